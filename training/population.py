"""Whom the development data's films are of: written into every card the training exports.

The Kermany films are children aged 1 to 5 from one hospital (Guangzhou Women and Children's
Medical Center), frontal films; the service warns about (or refuses) a DICOM whose header says the
patient is outside this range.
"""

from __future__ import annotations

TRAINING_POPULATION = {
    "description": "children aged 1 to 5, frontal chest films from one hospital",
    "min_age_years": 1.0,
    "max_age_years": 5.0,
    "source": "Guangzhou Women and Children's Medical Center (Kermany et al. 2018)",
    "views": ("AP", "PA"),
}
