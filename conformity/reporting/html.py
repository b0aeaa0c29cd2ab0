"""The HTML run report: failures first, each with the trace excerpt that proves it."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from typing import Any

from conformity.checks.model import concerning
from conformity.harness.report import RequirementRow, rows_of, summary_of
from conformity.reporting.text import visible

ORDER = {"fail": 0, "error": 1, "not-exercised": 2, "evidence-required": 3, "not-applicable": 4, "pass": 5}
NOT_PASSED = ("fail", "error", "not-exercised")
CSS = """
body{font:14px/1.5 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}header{padding:20px 36px;color:#fff}
header.ok{background:#18753c}header.ko{background:#b3261e}h1{margin:0;font-size:22px}main{padding:20px 36px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:14px 20px;margin-bottom:16px}
.req{border-top:1px solid #dde1e8;padding:10px 0}.req h3{margin:0 0 4px;font-size:15px}.meta{margin:0;color:#4a5263;font-size:13px}
details.group{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:8px 20px;margin-bottom:16px}
details.group>summary{cursor:pointer}details.group>summary h2{display:inline;font-size:18px}.badge{display:inline-block;font-size:12px;font-weight:600;border-radius:3px;padding:1px 7px;margin-right:6px}
.fail{background:#fde2e1;color:#8a1c14}.not-exercised{background:#f3e5f5;color:#6a1b9a}
section.problems{border:2px solid #b3261e}section.problems li{margin-bottom:4px}.error{background:#fff3d6;color:#7a5300}.pass{background:#dff5e6;color:#18753c}
.evidence-required,.not-applicable{background:#eee;color:#333}pre{background:#f3f4f7;padding:8px;overflow:auto;font-size:12px;max-height:360px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eceef2;padding:4px 8px;text-align:left}
"""


def escape(text: str) -> str:
    """Text for the page: control characters made visible (:mod:`conformity.reporting.text`), then HTML-escaped."""
    return html.escape(visible(text))


def _excerpt(traces: dict[str, dict[str, Any]], scenario: str | None, seq: int | None) -> str:
    if scenario is None or seq is None or scenario not in traces:
        return ""
    for e in traces[scenario].get("exchanges", ()):
        if e.get("seq") == seq:
            text = json.dumps(e, indent=2, ensure_ascii=False, sort_keys=True)
            if len(text) > 6000:
                text = text[:6000] + "\n… (truncated; full exchange in the bundle's trace)"
            return f"<details open><summary>Trace excerpt: scenario {escape(scenario)}, exchange {seq}</summary><pre tabindex=0>{escape(text)}</pre></details>"
    return ""


def _problems(report: dict[str, Any]) -> str:
    """The run's problems, at the top: what did not run as planned, before any verdict."""
    e = escape
    problems = report["problems"]
    driver = any(p["kind"] == "driver" for p in problems)
    items = "".join(
        f"<li><b>{e(p['kind'])}</b> — scenario <code>{e(p['scenario'])}</code>"
        + (f", step <code>{e(p['step'])}</code> ({e(p['action'])})" if p["step"] else "")
        + f": {e(p['message'])}"
        + (f"<pre tabindex=0>{e(json.dumps(p['details'], indent=2, ensure_ascii=False, sort_keys=True)[:3000])}</pre>"
           if p.get("details") else "") + "</li>" for p in problems)
    title = "Your driver did not answer properly" if driver else "The run did not go as planned"
    return (f"<section class=problems id=problems><h2>{title}: {len(problems)} step(s)</h2><p>These steps did not run as "
            "planned. The requirements judged on them are <b>error</b> or <b>not-exercised</b> (the cause is their "
            f"first finding), not failures of your software. Fix these first.</p><ul>{items}</ul></section>")


def _seed_source(source: str) -> str:
    """Who chose a run's seed, as the report's reader needs it said."""
    return "drawn by the sandbox" if source == "sandbox" else "chosen with --seed: reproduces a run, cannot be labelled"


#: how each verdict's group is titled, and whether it opens folded (a large run: hundreds of passes stay shut)
GROUPS = {"fail": ("Failed", True), "error": ("In error", True), "not-exercised": ("Not exercised", True),
          "evidence-required": ("Evidence required (document or manual proof, reviewed by the agency)", True),
          "not-applicable": ("Not applicable", False), "pass": ("Passed", False)}


def csp(css: str) -> str:
    """The page's Content-Security-Policy: nothing may load or run; its one ``<style>`` is allowed by its hash."""
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; style-src 'sha256-{digest}'; script-src 'none'; img-src 'none'; base-uri 'none'; "
            "form-action 'none'")


def _summary(report: dict[str, Any], rows: list[RequirementRow]) -> str:
    """The summary table: per verdict, how many requirements, with links to each one that did not pass."""
    e = escape
    by_verdict: dict[str, list[RequirementRow]] = {}
    for r in rows:
        by_verdict.setdefault(r.verdict, []).append(r)
    lines = []
    for verdict, group in by_verdict.items():
        linked = verdict in NOT_PASSED or verdict == "evidence-required"
        ids = ", ".join(f"<a href='#{e(r.id)}'>{e(r.id)}</a>" + (f" ({e(r.level)})" if r.level != "MUST" else "")
                        for r in group) if linked else "see below"
        lines.append(f"<tr><th scope=row><span class='badge {e(verdict)}'>{e(verdict)}</span></th>"
                     f"<td>{len(group)}</td><td>{ids}</td></tr>")
    return ("<section id=summary><h2>Summary</h2><table><caption>Requirements by verdict</caption><thead><tr>"
            "<th scope=col>Verdict</th><th scope=col>Requirements</th><th scope=col>Which</th></tr></thead>"
            f"<tbody>{''.join(lines)}</tbody></table></section>")


def _requirement(report: dict[str, Any], traces: dict[str, dict[str, Any]], r: RequirementRow) -> str:
    """One requirement: its verdict, each of its checks with its status, and for one not passed each finding with
    where in the trace, what was expected and seen, and the excerpt of the exchange that decided it."""
    e = escape
    checks = {c["id"]: c for c in report["checks"]}
    parts = [f"<article class=req id='{e(r.id)}'><h3><span class='badge {e(r.verdict)}'>{e(r.verdict)}</span>"
             f"{e(r.id)} [{e(r.level)}] {e(r.title)}</h3><p class=meta>{e(r.ref)} · proof: {e(r.method)}</p>"]
    if r.verdict == "evidence-required":
        parts.append(f"<p>Evidence to provide: {e(r.evidence or '')}</p>")
        attached = report.get("evidence", {}).get(r.id, [])
        parts.append("<p>Attached for review: " + (", ".join(
            f"<code>{e(f['file'])}</code> ({e(f['media_type'])}, {e(str(f['bytes']))} bytes, sha256 "
            f"{e(f['sha256'][:16])}…)" for f in attached) if attached else "<b>nothing</b>") + "</p>")
    shown = False
    items = []
    for cid in r.checks:
        c = checks.get(cid, {})
        status = str(c.get("status", "not evaluated"))
        mine = [f for f in c.get("findings", ()) if concerning(f, r.id)] if r.verdict in NOT_PASSED else []
        shown = shown or bool(mine)
        items.append(f"<li>check <code>{e(cid)}</code>: <span class='badge {e(status)}'>{e(status)}</span>"
                     + (f"<ul>{''.join(_finding(traces, f, c.get('scenario')) for f in mine)}</ul>" if mine else "")
                     + "</li>")
    if items:
        parts.append(f"<ul class=checks>{''.join(items)}</ul>")
    if r.verdict in NOT_PASSED and not shown and r.findings:  # the requirement's own findings, when no check holds one
        parts.append(f"<ul>{''.join(_finding(traces, dict(f), None) for f in r.findings)}</ul>")
    return "".join(parts) + "</article>"


def _finding(traces: dict[str, dict[str, Any]], f: dict[str, Any], scenario: str | None) -> str:
    e = escape
    seen = [f"expected <code>{e(json.dumps(f['expected'], ensure_ascii=False, sort_keys=True))}</code>"] \
        if "expected" in f else []
    seen += [f"got <code>{e(json.dumps(f['got'], ensure_ascii=False, sort_keys=True))}</code>"] if "got" in f else []
    exp = f"<br>{', '.join(seen)}" if seen else ""
    where = f" at <code>{e(str(f['where']))}</code>" if f.get("where") else ""
    return f"<li>{e(str(f.get('message', '')))}{where}{exp}{_excerpt(traces, f.get('scenario') or scenario, f.get('exchange'))}</li>"


def report_html(report: dict[str, Any], traces: dict[str, dict[str, Any]]) -> str:
    e = escape
    s = summary_of(report)
    rows = sorted(rows_of(report), key=lambda r: (ORDER.get(r.verdict, 9), r.level != "MUST", r.id))
    v = report["vendor"]
    outcome = "every automated MUST passed" if s.passed else (
        f"MUST requirements failed ({len(s.failed_must)} failed, {len(s.errored_must)} in error, "
        f"{len(s.not_exercised_must)} not exercised)")
    head = (f"<header class={'ok' if s.passed else 'ko'}><h1>{e(v['software'])} {e(v['version'])} — "
            f"{e(report['wave'])} {e(report['category'])}: {outcome}</h1>"
            f"<p>{s.must_passed}/{s.must_automated} automated MUST passed · "
            f"seed {e(str(report['seed']))} ({_seed_source(report['seed_source'])}) · attempt {e(str(report['attempt']))} · "
            f"run {e(report['run_id'])} · usine {e(report['harness']['version'])}</p></header>")
    body = [_problems(report)] if report.get("problems") else []
    body.append(_summary(report, rows))
    for verdict in dict.fromkeys(r.verdict for r in rows):
        group = [r for r in rows if r.verdict == verdict]
        title, opened = GROUPS.get(verdict, (verdict, True))
        body.append(f"<details class=group{' open' if opened else ''}><summary><h2>{e(title)}: {len(group)}</h2>"
                    f"</summary>{''.join(_requirement(report, traces, r) for r in group)}</details>")
    scen = "".join(f"<tr><th scope=row>{e(x['id'])}</th><td>{e(str(x['session_id']))}</td><td>{e(str(x['duration_s']))}</td>"
                   f"<td>{e('; '.join(str(f.get('kind', '')) + ': ' + str(f.get('message', '')) for f in x['driver_failures']) or (x['error'] or ''))}</td></tr>"
                   for x in report["scenarios"])
    body.append("<section id=scenarios><h2>Scenarios</h2><table><caption>Each scenario's sandbox session</caption>"
                "<thead><tr><th scope=col>Scenario</th><th scope=col>Session</th><th scope=col>Seconds</th>"
                f"<th scope=col>Driver problems</th></tr></thead><tbody>{scen}</tbody></table></section>")
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<meta http-equiv=Content-Security-Policy content=\"{csp(CSS)}\">"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>usine report {e(report['wave'])} {e(report['category'])}</title>"
            f"<style>{CSS}</style></head><body>{head}<main>{''.join(body)}</main></body></html>\n")
