"""report.json (all metrics), report.html (self-contained, for people), junit.xml (for CI)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd

from synthaug.schema import Schema


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.write_text(json.dumps(report, indent=2, default=_jsonable))


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


# -- JUnit ---------------------------------------------------------------------
def write_junit(path: Path, report: dict[str, Any]) -> None:
    """One test case per shape check, per expectation on each shard, and per gate."""
    suites = ET.Element("testsuites", name=f"synthaug {report.get('name', '')}")
    groups: list[tuple[str, list[tuple[str, bool, str]]]] = [
        ("checks", [(c["name"], c["passed"], c.get("detail", "")) for c in report.get("checks", [])]),
    ]
    for shard, result in report.get("expectations_detail", {}).items():
        cases = [
            (f"{r['expectation']}({r.get('column') or ''})", r["success"], json.dumps(r.get("observed"), default=str)[:500])
            for r in result["results"]
        ]
        groups.append((f"expectations.{shard}", cases))
    gate_cases = []
    for g in report.get("gates", []):
        value = "n/a" if g["value"] is None else f"{g['value']:.4f}"
        gate_cases.append((g["name"], g["passed"], f"{value} must be {g['op']} {g['threshold']} {g.get('detail', '')}".strip()))
    groups.append(("gates", gate_cases))
    for name, cases in groups:
        suite = ET.SubElement(suites, "testsuite", name=name, tests=str(len(cases)), failures=str(sum(not ok for _, ok, _ in cases)))
        for case_name, ok, message in cases:
            case = ET.SubElement(suite, "testcase", classname=f"synthaug.{name}", name=case_name)
            if not ok:
                ET.SubElement(case, "failure", message=message[:1000]).text = message
            elif message:
                ET.SubElement(case, "system-out").text = message
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


# -- HTML ----------------------------------------------------------------------
def write_html(path: Path, report: dict[str, Any], real: pd.DataFrame | None, synthetic: pd.DataFrame | None, schema: Schema | None) -> None:
    parts = [
        f"<h1>synthaug report: {html.escape(str(report.get('name', '')))}</h1>",
        _summary(report),
        "<h2>Gates</h2>",
        _gate_table(report.get("gates", [])),
    ]
    if real is not None and synthetic is not None and schema is not None:
        parts += ["<h2>Columns: real vs synthetic</h2>", _img(_distribution_figure(real, synthetic, schema))]
        heat = _correlation_figure(real, synthetic, schema)
        if heat is not None:
            parts += ["<h2>Correlation difference (|real - synthetic|)</h2>", _img(heat)]
    privacy = report.get("metrics", {}).get("privacy") or {}
    if "dcr_histogram_synthetic_train" in privacy:
        parts += ["<h2>Privacy: distance to closest training row</h2>", _img(_dcr_figure(privacy))]
    shapes = report.get("metrics", {}).get("fidelity", {}).get("quality", {}).get("column_shape_scores")
    if shapes:
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.3f}</td></tr>" for k, v in shapes.items() if v is not None)
        parts += ["<h2>Column shape scores</h2>", f"<table><tr><th>column</th><th>score</th></tr>{rows}</table>"]
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        ".pass{color:#176f2c;font-weight:bold}.fail{color:#b00020;font-weight:bold}img{max-width:100%}"
    )
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>synthaug report</title><style>{style}</style></head><body>{''.join(parts)}</body></html>")


def _summary(report: dict[str, Any]) -> str:
    status = report.get("status", "")
    cls = "pass" if status == "passed" else "fail"
    items = [("status", f"<span class='{cls}'>{html.escape(status)}</span>")]
    for key in ("rows", "shards", "generator", "config_hash", "seed"):
        if key in report:
            value = len(report[key]) if key == "shards" and isinstance(report[key], list) else report[key]
            items.append((key, html.escape(str(value))))
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in items) + "</table>"


def _gate_table(gates: list[dict]) -> str:
    if not gates:
        return "<p>No gates configured.</p>"
    rows = []
    for g in gates:
        value = "n/a" if g["value"] is None else f"{g['value']:.4f}"
        verdict = "<span class='pass'>PASS</span>" if g["passed"] else "<span class='fail'>FAIL</span>"
        rows.append(f"<tr><td>{verdict}</td><td>{html.escape(g['name'])}</td><td>{value}</td><td>{g['op']} {g['threshold']}</td><td>{html.escape(g.get('detail', ''))}</td></tr>")
    return "<table><tr><th></th><th>gate</th><th>value</th><th>threshold</th><th>detail</th></tr>" + "".join(rows) + "</table>"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _img(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    _plt().close(fig)
    return f"<img alt='plot' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _plotted(schema: Schema) -> list:
    return [c for c in schema.columns if c.kind not in ("id", "constant")]


def _distribution_figure(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema):
    plt = _plt()
    cols = _plotted(schema)
    ncols = 3
    nrows = max(1, int(np.ceil(len(cols) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(12, 3 * nrows), squeeze=False)
    for ax, spec in zip(axes.flat, cols):
        r, s = real[spec.name].dropna(), synthetic[spec.name].dropna()
        if spec.kind in ("continuous", "integer", "datetime"):
            r, s = (pd.to_numeric(x.astype("int64") if spec.kind == "datetime" else x, errors="coerce") for x in (r, s))
            r, s = r[np.isfinite(r)], s[np.isfinite(s)]  # inf counts as missing, as in the schema
            bins = np.histogram_bin_edges(np.r_[r.to_numpy(float), s.to_numpy(float)], bins=30)
            ax.hist(r, bins=bins, alpha=0.5, density=True, label="real")
            ax.hist(s, bins=bins, alpha=0.5, density=True, label="synthetic")
        else:
            rf = r.astype(str).value_counts(normalize=True)
            sf = s.astype(str).value_counts(normalize=True).reindex(rf.index.union(s.astype(str).unique()), fill_value=0)
            rf = rf.reindex(sf.index, fill_value=0)
            top = rf.sort_values(ascending=False).index[:15]
            x = np.arange(len(top))
            ax.bar(x - 0.2, rf[top], width=0.4, label="real")
            ax.bar(x + 0.2, sf[top], width=0.4, label="synthetic")
            ax.set_xticks(x, [t[:12] for t in top], rotation=45, ha="right", fontsize=7)
        ax.set_title(spec.name, fontsize=9)
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _codes(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    out = {}
    for spec in _plotted(schema):
        col = df[spec.name]
        if spec.kind in ("categorical", "boolean"):
            cats = [str(c) for c in spec.categories or []]
            out[spec.name] = pd.Categorical(col.astype(str), categories=cats).codes.astype(float)
        elif spec.kind == "datetime":
            out[spec.name] = pd.to_numeric(col.astype("int64"), errors="coerce")
        else:
            out[spec.name] = pd.to_numeric(col, errors="coerce")
    return pd.DataFrame(out)


def _correlation_figure(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema):
    cr, cs = _codes(real, schema).corr(method="spearman"), _codes(synthetic, schema).corr(method="spearman")
    if cr.shape[0] < 2:
        return None
    diff = (cr - cs).abs().fillna(0)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(diff), 0.8 + 0.5 * len(diff)))
    im = ax.imshow(diff.to_numpy(), vmin=0, vmax=1, cmap="Reds")
    ax.set_xticks(range(len(diff)), diff.columns, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(diff)), diff.columns, fontsize=7)
    fig.colorbar(im, ax=ax)
    return fig


def _dcr_figure(privacy: dict):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3))
    for key, label in (("dcr_histogram_holdout_train", "holdout -> train"), ("dcr_histogram_synthetic_train", "synthetic -> train")):
        h = privacy[key]
        counts, edges = np.asarray(h["counts"], float), np.asarray(h["edges"], float)
        ax.stairs(counts / max(counts.sum(), 1), edges, label=label)
    ax.set_xlabel("distance to closest training row")
    ax.legend()
    return fig
