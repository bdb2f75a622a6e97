"""The modality-free part of a report: summary, gate table, JUnit XML, and the HTML page shell.

Everything user-controlled (column names, values, details) is escaped before it reaches HTML.
"""

from __future__ import annotations

import html
import json
from typing import Any
from xml.etree import ElementTree as ET


# -- JUnit ---------------------------------------------------------------------
def junit_xml(report: dict[str, Any]) -> str:
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
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)




def html_page(report: dict[str, Any], sections: list[str]) -> str:
    """The whole report.html: title, summary, gates, then the modality's sections (already HTML)."""
    parts = [
        f"<h1>synthaug report: {html.escape(str(report.get('name', '')))}</h1>",
        _summary(report),
        "<h2>Gates</h2>",
        _gate_table(report.get("gates", [])),
        *sections,
    ]
    style = (
        "body{font-family:sans-serif;margin:2em auto;padding:0 2em;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        ".pass{color:#176f2c;font-weight:bold}.fail{color:#b00020;font-weight:bold}img{max-width:100%}"
    )
    head = f"<meta charset='utf-8'><title>synthaug report</title><style>{style}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(parts)}</body></html>"


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
        rows.append(
            f"<tr><td>{verdict}</td><td>{html.escape(g['name'])}</td><td>{value}</td>"
            f"<td>{html.escape(str(g['op']))} {html.escape(str(g['threshold']))}</td><td>{html.escape(g.get('detail', ''))}</td></tr>"
        )
    return "<table><tr><th></th><th>gate</th><th>value</th><th>threshold</th><th>detail</th></tr>" + "".join(rows) + "</table>"


