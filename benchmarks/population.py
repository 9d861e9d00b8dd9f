"""Films from outside the population through the service's engine: the 62 adults' films of the
development folder (JPEG, no header: nothing tells their age) and a real adult CR DICOM
(RG1_UNCR.dcm from pydicom-data, a 64-year-old), against the children's dev-test films.

    python -m benchmarks.population [--model DIR]

Writes benchmarks/results/population.{json,md}: answered, refused, warned and the labels.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from benchmarks.common import write_result
from benchmarks.devdata import dev_data_root
from engine import Predictor, default_model_dir
from engine.population import OutsidePopulationError
from imaging import ImageError, NotChestXrayError, is_image_file


def outcomes(predictor: Predictor, files: list[Path]) -> dict:
    counts: Counter = Counter()
    for path in files:
        try:
            result = predictor.predict(path.read_bytes(), heatmap=False)
        except NotChestXrayError:
            counts["refused_not_chest_xray"] += 1
            continue
        except OutsidePopulationError:
            counts["refused_outside_population"] += 1
            continue
        except ImageError:
            counts["unreadable"] += 1
            continue
        counts["answered"] += 1
        counts[f"answered_{result.label}"] += 1
        counts["warned"] += bool(result.warnings)
    return {"films": len(files), **dict(sorted(counts.items()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    args = parser.parse_args()
    from pydicom.data import get_testdata_file

    root = dev_data_root()
    adult_cr = [Path(get_testdata_file("RG1_UNCR.dcm"))]
    groups = {
        "adults' films (other/adult_chest, JPEG)": sorted(
            (root / "other" / "adult_chest" / "NORMAL").iterdir()
        ),
        "adult CR DICOM (RG1_UNCR.dcm)": adult_cr,
        "children's dev-test films": sorted(
            p for p in (root / "chest_xray" / "test").rglob("*") if is_image_file(p)
        ),
    }
    result: dict = {}
    for check in ("warn", "refuse"):
        predictor = Predictor.from_directory(
            args.model, gradcam_enabled=False, population_check=check
        )
        result[check] = {name: outcomes(predictor, files) for name, files in groups.items()}
        result["model_version"] = predictor.bundle.version
    columns = [
        "films",
        "answered",
        "answered_NORMAL",
        "answered_PNEUMONIA",
        "warned",
        "refused_not_chest_xray",
        "refused_outside_population",
        "unreadable",
    ]
    md = [f"Model {result['model_version']}; through the engine `/predict` runs.", ""]
    for check in ("warn", "refuse"):
        md += [
            f"POPULATION_CHECK={check}:",
            "",
            "| films | " + " | ".join(columns) + " |",
            "| --- " * (len(columns) + 1) + "|",
        ]
        for name, row in result[check].items():
            md.append(f"| {name} | " + " | ".join(str(row.get(c, 0)) for c in columns) + " |")
        md.append("")
    write_result("population", result, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
