"""Writing a run's files: JSON documents, reports, JUnit XML, and what produced them.

Validation and reports compute content; this module is where it lands on disk.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

VERSIONED = (
    "synthaug",
    "torch",
    "pytorch-lightning",
    "pandas",
    "pyarrow",
    "numpy",
    "scikit-learn",
    "great-expectations",
    "sdmetrics",
    "opacus",
)


def versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _jsonable(x: Any) -> Any:
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_jsonable))


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_report(out_dir: Path, report: dict[str, Any], validator, real, synthetic, schema) -> None:
    """report.json, junit.xml, report.html and expectations/ (suite, per-shard results, Data Docs)."""
    from synthaug.report import shell, tabular

    out_dir.mkdir(parents=True, exist_ok=True)
    if validator.suite is not None:
        write_expectations(out_dir / "expectations", validator.suite, validator.results)
    write_json(out_dir / "report.json", report)
    write_text(out_dir / "junit.xml", shell.junit_xml(report))
    write_text(out_dir / "report.html", shell.html_page(report, tabular.sections(report, real, synthetic, schema)))


def write_expectations(out: Path, suite, results_by_shard: dict[str, dict]) -> Path:
    """suite.json, results/<shard>.json and static GX Data Docs in docs/; returns docs/index.html."""
    import shutil
    import tempfile

    from synthaug.validation.expectations import render_data_docs, safe_name

    (out / "results").mkdir(parents=True, exist_ok=True)
    write_json(out / "suite.json", suite.to_json_dict())
    for shard, result in results_by_shard.items():
        write_json(out / "results" / f"{safe_name(shard)}.json", {k: v for k, v in result.items() if k != "gx"})
    with tempfile.TemporaryDirectory(prefix="synthaug-docs-") as tmp:
        render_data_docs(suite, results_by_shard, Path(tmp))
        docs = out / "docs"
        if docs.exists():
            shutil.rmtree(docs)
        shutil.copytree(tmp, docs)
    return docs / "index.html"


def write_image_report(out_dir: Path, report: dict[str, Any], suite, results: dict, train, synth, labels) -> None:
    """report.json, junit.xml, report.html (image grids) and expectations/ for an image run."""
    from synthaug.report import image, shell

    out_dir.mkdir(parents=True, exist_ok=True)
    if suite is not None:
        write_expectations(out_dir / "expectations", suite, results)
    write_json(out_dir / "report.json", report)
    write_text(out_dir / "junit.xml", shell.junit_xml(report))
    write_text(out_dir / "report.html", shell.html_page(report, image.sections(report, train, synth, labels)))
