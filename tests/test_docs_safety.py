"""Every HTML page synthaug ships is safe to open (user text never becomes markup) and works
offline (no stylesheet, script or image fetched from the network)."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from synthaug.cli import app
from synthaug.validation.expectations import offline_page

SCRIPT_NAME = "<script>alert(1)</script>"
ATTRIBUTE_NAME = 'x" onmouseover="alert(3)\' &amp;'
IMG_VALUE = "<img src=x onerror=alert(2)>"
REMOTE = re.compile(r"<(?:link|script|img|iframe)\b[^>]*\b(?:href|src)\s*=\s*[\"']?\s*(?:https?:)?//", re.IGNORECASE)
REMOTE_CSS = re.compile(r"url\(\s*[\"']?\s*(?:https?:)?//|@import", re.IGNORECASE)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A published run on a table whose column names and values are HTML."""
    import torch

    tmp = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    n = 80
    source = tmp / "hostile.parquet"
    pq.write_table(
        pa.table(
            {
                SCRIPT_NAME: rng.normal(10, 2, n),
                ATTRIBUTE_NAME: rng.integers(0, 50, n),
                "kind": [[IMG_VALUE, "plain", "a & b"][i % 3] for i in range(n)],
            }
        ),
        source,
    )
    pipeline = tmp / "hostile.yaml"
    pipeline.write_text(
        f"name: hostile\nsource: {{path: '{source}'}}\ngenerator: vae_small\ntrainer: tiny\n"
        f"gates: {{expectations: true, quality_min: 0.0}}\n"
        f"sample: {{n_rows: 200, rows_per_shard: 100}}\noutput: {{dir: '{tmp / 'out'}'}}\n"
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(app, ["run", str(pipeline), "-q"])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    return tmp / "out"


def pages(run_dir):
    found = sorted(run_dir.rglob("*.html"))
    assert found
    return {p: p.read_text(encoding="utf-8") for p in found}


def test_no_user_text_becomes_markup(hostile_run):
    all_pages = pages(hostile_run)
    assert hostile_run / "report.html" in all_pages and hostile_run / "expectations" / "docs" / "index.html" in all_pages
    for path, text in all_pages.items():
        lowered = text.lower()
        assert "<script>alert" not in lowered, path
        assert "<img src=x" not in lowered, path
        assert 'onmouseover="alert' not in lowered, path
        assert "<script" not in lowered, f"{path}: pages ship no scripts at all"
    # The names are still shown, as text.
    report = all_pages[hostile_run / "report.html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    docs = "".join(t for p, t in all_pages.items() if "docs" in p.parts)
    assert "\u2039script\u203aalert(1)\u2039/script\u203a" in docs  # GX pages: look-alike brackets


def test_data_docs_work_offline(hostile_run):
    docs = hostile_run / "expectations" / "docs"
    for path, text in pages(docs).items():
        assert not REMOTE.search(text), f"{path}: {REMOTE.search(text).group(0)}"
        assert not REMOTE_CSS.search(text), path
        assert "<style>" in text, path
    # index.html is plain HTML (GX fills its tables by script): it links every page, and they exist.
    index = (docs / "index.html").read_text()
    links = re.findall(r"href='([^']+)'", index)
    assert any(link.startswith("expectations/") for link in links)
    assert len([link for link in links if link.startswith("validations/")]) == 2  # one per shard
    assert all((docs / link).is_file() for link in links)


def test_offline_page_strips_remote_assets_and_scripts():
    page = (
        "<html><head><link rel='stylesheet' href='https://cdn.example/b.css'/>"
        "<script src=\"https://code.jquery.com/jquery.js\"></script><style>.a{background:url('https://x/y.png')}</style></head>"
        "<body><img src='//cdn.example/logo.png'><script>var x = '<b>';</script><a href='https://example.org'>site</a>"
        "<img src='./static/images/ok.png'></body></html>"
    )
    out = offline_page(page)
    assert "cdn.example" not in out and "jquery" not in out and "<script" not in out and "x/y.png" not in out
    assert "<a href='https://example.org'>site</a>" in out  # an ordinary link stays
    assert "./static/images/ok.png" in out
    assert out.count("<style>") == 2 and out.index("<style>") < out.index("</head>")
