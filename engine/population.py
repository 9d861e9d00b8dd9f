"""Is the patient in the population the model was trained on? From the DICOM header's age and
from the pixels.

The card's `population` says whom the networks saw (the shipped model: children aged 1 to 5). A
film whose header gives an age outside that range is answered with a warning sentence, or refused
(`POPULATION_CHECK=refuse`). The sentences name the age group, never the exact age or a date.
Whatever the format, the card's `population.check` (when the bundle has one) reads the ensemble's
pooled features and says how much the film looks like an adult's (`population_score`); at or above
its threshold the film is warned (or refused) from its pixels. Where the header and the pixels
disagree, the sentence says both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

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


def population_warning(
    age_years: float | None,
    population: Population | None,
    pixels_adult: bool | None = None,
    score: float | None = None,
) -> str | None:
    """The warning sentence for this age, or None (in the population, or nothing to check)."""
    if population is None:
        return None
    trained_on = f"the model was trained on {population.description}"
    shown = "" if score is None else f"{score:.2f}"
    pixels = f"its pixels look like an adult's (population score {shown})"
    group = None if age_years is None else age_group(age_years, population)
    if group is not None:
        if pixels_adult is False:
            also = "; its pixels do not look like an adult's"
        elif pixels_adult and group != "an adult's film":
            also = f"; {pixels}"
        else:
            also = ""
        return (
            f"{group} according to its DICOM header{also}: {trained_on}, so its answer may not "
            "hold for this patient"
        )
    if not pixels_adult:
        return None
    if age_years is not None:
        return (
            f"{pixels}, though its DICOM header gives an age within the model's population: "
            f"{trained_on}; check whose film it is"
        )
    return (
        f"this film looks like an adult's from its pixels (population score {shown}): "
        f"{trained_on}, so its answer may not hold for this patient"
    )


PROBE_FILE = "population_probe.npz"


@dataclass(frozen=True)
class PopulationProbe:
    """A linear read-out of the ensemble's pooled features: P(the film is an adult's)."""

    weights: np.ndarray  # (width,) float64, over the raw pooled features
    bias: float

    @classmethod
    def load(cls, path: Path) -> PopulationProbe:
        with np.load(path, allow_pickle=False) as stored:
            return cls(stored["weights"].astype(np.float64), float(stored["bias"]))

    def scores(self, features: np.ndarray) -> np.ndarray:
        """P(adult) for each row of `features` (N, width)."""
        z = np.asarray(features, np.float64) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def score(self, features: np.ndarray) -> float:
        z = float(np.dot(np.asarray(features, np.float64).reshape(-1), self.weights)) + self.bias
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
