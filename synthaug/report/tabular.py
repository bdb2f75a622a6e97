"""The tabular sections of report.html: real-vs-synthetic plots per column, correlation
differences, privacy histograms, per-column shape scores. Plots are PNGs inlined as data URIs."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
import pandas as pd

from synthaug.schema import Schema


def sections(report: dict[str, Any], real: pd.DataFrame | None, synthetic: pd.DataFrame | None, schema: Schema | None) -> list[str]:
    parts = []
    if real is not None and synthetic is not None and schema is not None:
        parts += ["<h2>Columns: real vs synthetic</h2>", _img(_distribution_figure(real, synthetic, schema))]
        heat = _correlation_figure(real, synthetic, schema)
        if heat is not None:
            parts += ["<h2>Correlation difference (|real - synthetic|)</h2>", _img(heat)]
    privacy = report.get("metrics", {}).get("privacy") or {}
    if "dcr_histogram_synthetic_train" in privacy:
        parts += ["<h2>Privacy: distance to closest training row</h2>", _img(_dcr_figure(privacy))]
    detection = report.get("metrics", {}).get("fidelity", {}).get("detection") or {}
    if detection.get("top_features"):
        rows = "".join(
            f"<tr><td>{html.escape(str(f['feature']))}</td><td>{float(f['importance']):.3f}</td>"
            f"<td>{html.escape(str(f.get('detail', '')))}</td></tr>"
            for f in detection["top_features"]
        )
        parts += [
            f"<h2>Why rows are detectable (detection AUC {float(detection['auc']):.3f})</h2>",
            "<p>The drop in the real-vs-synthetic classifier's AUC when one feature is shuffled: "
            "the features that give synthetic rows away.</p>",
            f"<table><tr><th>feature</th><th>importance</th><th>detail</th></tr>{rows}</table>",
        ]
    shapes = report.get("metrics", {}).get("fidelity", {}).get("quality", {}).get("column_shape_scores")
    if shapes:
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.3f}</td></tr>" for k, v in shapes.items() if v is not None)
        parts += ["<h2>Column shape scores</h2>", f"<table><tr><th>column</th><th>score</th></tr>{rows}</table>"]
    return parts


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False  # column names are text, never mathtext ($...$)
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
            both = np.r_[r.to_numpy(float), s.to_numpy(float)]
            top = float(np.abs(both).max()) if both.size else 1.0
            if top > 1e300:  # near the float64 limits: plot in units of `top` so bins and ticks stay finite
                r, s = r / top, s / top
                ax.set_xlabel(f"x {top:.3g}", fontsize=7)
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
    for ax in list(axes.flat)[len(cols) :]:
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
