"""Is the patient in the population the model was trained on? Read from the DICOM header's age.

The card's `population` says whom the networks saw (the shipped model: children aged 1 to 5). A
film whose header gives an age outside that range is answered with a warning sentence, or refused
(`POPULATION_CHECK=refuse`). The sentences name the age group, never the exact age or a date.
Films without an age (JPEG, PNG, a DICOM without PatientAge or dates) pass unchecked.
"""

from __future__ import annotations

from typing import Literal

from engine.card import Population
from imaging import ImageError

PopulationCheck = Literal["warn", "refuse", "off"]
ADULT_YEARS = 18.0


class OutsidePopulationError(ImageError):
    """The header says the patient is outside the model's population (HTTP 422)."""

    code = "outside_population"


def age_group(age_years: float, population: Population) -> str | None:
    """A phrase for the patient's age group when it is outside `population`, else None."""
    if age_years >= ADULT_YEARS:
        return "an adult's film"
    if age_years >= population.max_age_years + 1:  # ages are whole years: 5 means under 6
        return f"an older child's film (over {population.max_age_years:g} years)"
    if age_years < population.min_age_years:
        return f"an infant's film (under {population.min_age_years:g} year" + (
            "s)" if population.min_age_years != 1 else ")"
        )
    return None


def population_warning(age_years: float | None, population: Population | None) -> str | None:
    """The warning sentence for this age, or None (in the population, or nothing to check)."""
    if age_years is None or population is None:
        return None
    group = age_group(age_years, population)
    if group is None:
        return None
    return (
        f"{group} according to its DICOM header: the model was trained on "
        f"{population.description}, so its answer may not hold for this patient"
    )
