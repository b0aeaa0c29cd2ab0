"""The HTML run report: failures first, each with the trace excerpt that proves it."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from conformity.checks.model import concerning
from conformity.harness.report import rows_of, summary_of

ORDER = {"fail": 0, "error": 1, "not-exercised": 2, "evidence-required": 3, "not-applicable": 4, "pass": 5}
NOT_PASSED = ("fail", "error", "not-exercised")
CSS = """
body{font:14px/1.5 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}header{padding:20px 36px;color:#fff}
header.ok{background:#18753c}header.ko{background:#b3261e}h1{margin:0;font-size:22px}main{padding:20px 36px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:14px 20px;margin-bottom:16px}
.req h3{margin:0 0 4px;font-size:15px}.badge{display:inline-block;font-size:12px;font-weight:600;border-radius:3px;padding:1px 7px;margin-right:6px}
.fail{background:#fde2e1;color:#8a1c14}.not-exercised{background:#f3e5f5;color:#6a1b9a}
section.problems{border:2px solid #b3261e}section.problems li{margin-bottom:4px}.error{background:#fff3d6;color:#7a5300}.pass{background:#dff5e6;color:#18753c}
.evidence-required,.not-applicable{background:#eee;color:#333}pre{background:#f3f4f7;padding:8px;overflow:auto;font-size:12px;max-height:360px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eceef2;padding:4px 8px;text-align:left}
"""


def _excerpt(traces: dict[str, dict[str, Any]], scenario: str | None, seq: int | None) -> str:
    if scenario is None or seq is None or scenario not in traces:
        return ""
    for e in traces[scenario].get("exchanges", ()):
        if e.get("seq") == seq:
            text = json.dumps(e, indent=2, ensure_ascii=False, sort_keys=True)
            if len(text) > 6000:
                text = text[:6000] + "\n… (truncated; full exchange in the bundle's trace)"
            return f"<details open><summary>Trace excerpt: scenario {escape(scenario)}, exchange {seq}</summary><pre>{escape(text)}</pre></details>"
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
        + (f"<pre>{e(json.dumps(p['details'], indent=2, ensure_ascii=False, sort_keys=True)[:3000])}</pre>"
           if p.get("details") else "") + "</li>" for p in problems)
    title = "Your driver did not answer properly" if driver else "The run did not go as planned"
    return (f"<section class=problems id=problems><h2>{title}: {len(problems)} step(s)</h2><p>These steps did not run as "
            "planned. The requirements judged on them are <b>error</b> or <b>not-exercised</b> (the cause is their "
            f"first finding), not failures of your software. Fix these first.</p><ul>{items}</ul></section>")


def _seed_source(source: str) -> str:
    """Who chose a run's seed, as the report's reader needs it said."""
    return "drawn by the sandbox" if source == "sandbox" else "chosen with --seed: reproduces a run, cannot be labelled"


def report_html(report: dict[str, Any], traces: dict[str, dict[str, Any]]) -> str:
    e = escape
    s = summary_of(report)
    check_scenario = {c["id"]: c["scenario"] for c in report["checks"]}
    check_findings = {c["id"]: c for c in report["checks"]}
    rows = sorted(rows_of(report), key=lambda r: (ORDER.get(r.verdict, 9), r.level != "MUST", r.id))
    v = report["vendor"]
    head = (f"<header class={'ok' if s.passed else 'ko'}><h1>{e(v['software'])} {e(v['version'])} — "
            f"{e(report['wave'])} {e(report['category'])}: {'every automated MUST passed' if s.passed else 'MUST requirements failed'}</h1>"
            f"<p>{s.must_passed}/{s.must_automated} automated MUST passed · verdicts {e(json.dumps(s.verdicts, sort_keys=True))} · "
            f"seed {report['seed']} ({_seed_source(report['seed_source'])}) · attempt {report['attempt']} · "
            f"run {e(report['run_id'])} · usine {e(report['harness']['version'])}</p></header>")
    body = [_problems(report)] if report.get("problems") else []
    for r in rows:
        parts = [f"<section class=req id='{e(r.id)}'><h3><span class='badge {e(r.verdict)}'>{e(r.verdict)}</span>"
                 f"{e(r.id)} [{e(r.level)}] {e(r.title)}</h3><small>{e(r.ref)} · proof: {e(r.method)}"
                 + (f" · checks: {e(', '.join(r.checks))}" if r.checks else "") + "</small>"]
        if r.verdict == "evidence-required":
            parts.append(f"<p>Evidence to provide: {e(r.evidence or '')}</p>")
            attached = report.get("evidence", {}).get(r.id, [])
            parts.append("<p>Attached for review: " + (", ".join(
                f"<code>{e(f['file'])}</code> ({e(f['media_type'])}, {f['bytes']} bytes, sha256 {e(f['sha256'][:16])}…)"
                for f in attached) if attached else "<b>nothing</b>") + "</p>")
        if r.verdict in NOT_PASSED:
            for cid in r.checks:
                c = check_findings[cid]
                if c["status"] not in NOT_PASSED:
                    continue
                mine = [f for f in c["findings"] if concerning(f, r.id)]
                if not mine:
                    continue
                parts.append(f"<p><b>{e(cid)}</b> ({e(c['status'])})</p><ul>")
                for f in mine:
                    exp = (f"<br>expected <code>{e(json.dumps(f.get('expected'), ensure_ascii=False, sort_keys=True))}</code>, got "
                           f"<code>{e(json.dumps(f.get('got'), ensure_ascii=False, sort_keys=True))}</code>") if ("expected" in f or "got" in f) else ""
                    where = f" at <code>{e(f['where'])}</code>" if f.get("where") else ""
                    parts.append(f"<li>{e(f['message'])}{where}{exp}{_excerpt(traces, f.get('scenario') or check_scenario[cid], f.get('exchange'))}</li>")
                parts.append("</ul>")
        parts.append("</section>")
        body.append("".join(parts))
    scen = "".join(f"<tr><td>{e(x['id'])}</td><td>{e(str(x['session_id']))}</td><td>{x['duration_s']}</td>"
                   f"<td>{e('; '.join(f.get('kind', '') + ': ' + f.get('message', '') for f in x['driver_failures']) or (x['error'] or ''))}</td></tr>"
                   for x in report["scenarios"])
    body.append(f"<section><h2>Scenarios</h2><table><tr><th>Scenario</th><th>Session</th><th>Seconds</th><th>Driver problems</th></tr>{scen}</table></section>")
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>usine report {e(report['wave'])} {e(report['category'])}</title>"
            f"<style>{CSS}</style></head><body>{head}<main>{''.join(body)}</main></body></html>\n")
