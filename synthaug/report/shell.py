"""The modality-free part of a report: summary, gate table, JUnit XML, and the HTML page shell.

Everything user-controlled (column names, values, details) is escaped before it reaches HTML.

A gate is "passed", "failed" or "skipped": evaluate() marks a gate whose metric could not be
measured with the detail "skipped: <reason>"; it passes when the gates preset lists it under
`optional` (shown as skipped) and fails otherwise (shown as failed, "skipped (reason)").
"""

from __future__ import annotations

import html
import json
from typing import Any
from xml.etree import ElementTree as ET

SKIPPED = "skipped: "


# -- gate verdicts ------------------------------------------------------------------
def skip_reason(gate: dict) -> str | None:
    """Why a gate could not be measured ("no holdout ..."), or None if it was measured."""
    detail = str(gate.get("detail") or "")
    if gate.get("value") is not None or not detail.startswith(SKIPPED):
        return None
    return detail[len(SKIPPED) :].split("; ", 1)[0]


def gate_status(gate: dict) -> str:
    """ "passed", "failed", or "skipped" (not measurable, and allowed to be: listed as optional)."""
    if not gate["passed"]:
        return "failed"
    return "skipped" if skip_reason(gate) is not None else "passed"


def gate_line(gate: dict) -> str:
    """One console line: `FAIL mia_auc_max: 0.7100 (must be <= 0.6)`, `SKIP tstr_gap_max: skipped (no target declared)`."""
    reason = skip_reason(gate)
    if reason is None:
        value = "n/a" if gate["value"] is None else f"{gate['value']:.4f}"
        detail = f" {gate['detail']}" if gate.get("detail") else ""
        return f"{'PASS' if gate['passed'] else 'FAIL'} {gate['name']}: {value} (must be {gate['op']} {gate['threshold']}){detail}"
    if gate["passed"]:
        return f"SKIP {gate['name']}: skipped ({reason}); optional in the gates preset"
    return f"FAIL {gate['name']}: skipped ({reason}); the gates preset requires it (list it under optional: to allow skipping)"


def gate_summary(gates: list[dict]) -> str:
    """`6 passed, 1 failed, 4 skipped: no --holdout` (reasons of the skipped gates, each once)."""
    status = [gate_status(g) for g in gates]
    parts = [f"{status.count('passed')} passed"]
    if status.count("failed"):
        parts.append(f"{status.count('failed')} failed")
    if status.count("skipped"):
        reasons = dict.fromkeys(skip_reason(g) for g, st in zip(gates, status) if st == "skipped")
        parts.append(f"{status.count('skipped')} skipped: {'; '.join(reasons)}")
    return ", ".join(parts)


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
    skipped_gates = {g["name"]: skip_reason(g) for g in report.get("gates", []) if gate_status(g) == "skipped"}
    for g in report.get("gates", []):
        value = "n/a" if g["value"] is None else f"{g['value']:.4f}"
        gate_cases.append((g["name"], g["passed"], f"{value} must be {g['op']} {g['threshold']} {g.get('detail', '')}".strip()))
    groups.append(("gates", gate_cases))
    for name, cases in groups:
        skips = skipped_gates if name == "gates" else {}
        suite = ET.SubElement(
            suites, "testsuite", name=name, tests=str(len(cases)), failures=str(sum(not ok for _, ok, _ in cases)), skipped=str(len(skips))
        )
        for case_name, ok, message in cases:
            case = ET.SubElement(suite, "testcase", classname=f"synthaug.{name}", name=case_name)
            if not ok:
                ET.SubElement(case, "failure", message=message[:1000]).text = message
            elif case_name in skips:
                ET.SubElement(case, "skipped", message=str(skips[case_name])[:1000])
            elif message:
                ET.SubElement(case, "system-out").text = message
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def html_page(report: dict[str, Any], sections: list[str]) -> str:
    """The whole report.html: title, summary, gates, then the modality's sections (already HTML)."""
    parts = [
        f"<h1>synthaug report: {html.escape(str(report.get('name', '')))}</h1>",
        _summary(report),
        "<h2>Gates</h2>",
        f"<p>{html.escape(gate_summary(report.get('gates', [])))}</p>" if report.get("gates") else "",
        _gate_table(report.get("gates", [])),
        *sections,
    ]
    style = (
        "body{font-family:sans-serif;margin:2em auto;padding:0 2em;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        ".pass{color:#176f2c;font-weight:bold}.fail{color:#b00020;font-weight:bold}.skip{color:#8a6d00;font-weight:bold}img{max-width:100%}"
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
    verdicts = {
        "passed": "<span class='pass'>PASS</span>",
        "failed": "<span class='fail'>FAIL</span>",
        "skipped": "<span class='skip'>SKIP</span>",
    }
    for g in gates:
        reason = skip_reason(g)
        if reason is not None:
            value = f"skipped ({reason})"
            required = "required by the gates preset (list it under optional: to allow skipping)"
            detail = "optional in the gates preset" if g["passed"] else required
        else:
            value = "n/a" if g["value"] is None else f"{g['value']:.4f}"
            detail = str(g.get("detail") or "")
        rows.append(
            f"<tr><td>{verdicts[gate_status(g)]}</td><td>{html.escape(str(g['name']))}</td><td>{html.escape(value)}</td>"
            f"<td>{html.escape(str(g['op']))} {html.escape(str(g['threshold']))}</td><td>{html.escape(detail)}</td></tr>"
        )
    return "<table><tr><th></th><th>gate</th><th>value</th><th>threshold</th><th>detail</th></tr>" + "".join(rows) + "</table>"
