"""The image sections of report.html: real vs synthetic grids per class, the closest
synthetic-training pairs, and the metrics table. Grids are PNGs inlined as data URIs."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

CELL = 48  # pixels per image in the grids (small images are scaled up, nearest neighbour)
PER_CLASS = 8


def sections(report: dict[str, Any], train, synth: np.ndarray, labels: np.ndarray) -> list[str]:
    names = list(train.label_names)
    rows = []
    for k, name in enumerate(names):
        real = train.images[train.labels == k][:PER_CLASS]
        fake = synth[labels == k][:PER_CLASS]
        rows.append(f"<tr><th>{html.escape(str(name))}</th><td>{_grid(real)}</td><td>{_grid(fake)}</td></tr>")
    parts = [
        "<h2>Images per class: real (training) vs synthetic</h2>",
        f"<table><tr><th>label</th><th>real</th><th>synthetic</th></tr>{''.join(rows)}</table>",
    ]
    pairs = (report.get("metrics", {}).get("privacy") or {}).get("closest_pairs") or []
    if pairs:
        cells = []
        for p in pairs[:8]:
            i, j = p.get("synthetic_index"), p.get("train_index")
            if i is None or j is None or i >= len(synth) or j >= len(train.images):
                continue
            pair = np.stack([synth[i], train.images[j]])
            cells.append(f"<td>{_grid(pair)}<br>pixel distance {float(p.get('pixel_distance', 0)):.3g}</td>")
        if cells:
            parts += ["<h2>Closest synthetic / training pairs (memorisation check)</h2>", f"<table><tr>{''.join(cells)}</tr></table>"]
    parts += ["<h2>Metrics</h2>", _metrics_table(report.get("metrics", {}))]
    return parts


def _grid(images: np.ndarray) -> str:
    from PIL import Image

    if not len(images):
        return "<em>none</em>"
    n, h, w, c = images.shape
    strip = np.concatenate(list(images), axis=1)  # side by side
    mode = "L" if c == 1 else "RGB"
    img = Image.fromarray(strip[..., 0] if c == 1 else strip, mode)
    scale = max(1, CELL // max(h, w))
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return f"<img alt='images' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = []
    for section in ("fidelity", "tstr", "privacy"):
        for key, value in (metrics.get(section) or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append(f"<tr><td>{html.escape(section)}.{html.escape(str(key))}</td><td>{value:.4g}</td></tr>")
    for key, reason in (metrics.get("skipped") or {}).items():
        rows.append(f"<tr><td>{html.escape(str(key))}</td><td>skipped: {html.escape(str(reason))}</td></tr>")
    return "<table><tr><th>metric</th><th>value</th></tr>" + "".join(rows) + "</table>"
