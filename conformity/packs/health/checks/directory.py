"""Checks: the health directory (DIRECTORY) — on the trace of scenario ``directory.searches``.

What the directory answered (the recorded JSON bodies, their ETag and Cache-Control) is compared
with the entries the software shows for each search step; a 304 answer stands for the body the
directory served earlier for the same query.
"""

from __future__ import annotations

import re
from typing import Any

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import quote, step_exchanges
from conformity.checks.model import Finding, Verdict, not_exercised
from conformity.checks.registry import check
from conformity.checks.trace import Exchange, Note, RunView, TraceView, views
from conformity.packs.health.checks.cda import verdict
from conformity.packs.health.checks.evidence import address_key, directory_addresses, output, step_label, when
from conformity.packs.health.checks.messaging import refused_before_sending
from conformity.packs.health.ins import normalise_name

SCENARIO = "directory.searches"


def query_key(e: Exchange) -> tuple[str, tuple[tuple[str, str], ...]]:
    return e.local_path, tuple(sorted((k, v[0]) for k, v in e.query.items() if v))


def searches(subject: TraceView | RunView, path: str) -> list[tuple[Note, Exchange, list[dict[str, Any]]]]:
    """directory.search steps (of every scenario of a RunView) that searched ``path``: the step, its last request,
    the entries it used."""
    out: list[tuple[Note, Exchange, list[dict[str, Any]]]] = []
    for trace, note in ((t, n) for t in views(subject) for n in t.performed("directory.search")):
        requests = [e for e in step_exchanges(trace, note, "directory") if e.method == "GET" and e.local_path == path]
        if not requests:
            continue
        out.append((note, requests[-1], answer_body(trace, requests[-1])))
    return out


def answer_body(trace: TraceView, e: Exchange) -> list[dict[str, Any]]:
    """The entries of a directory answer; for a 304, those of the last 200 for the same query."""
    if e.status == 304:
        earlier = [x for x in trace.exchanges("directory", method="GET", before=e.seq)
                   if query_key(x) == query_key(e) and x.status == 200]
        e = earlier[-1] if earlier else e
    body = e.response_json
    return [d for d in body if isinstance(d, dict)] if isinstance(body, list) else []


def results(note: Note) -> list[dict[str, Any]]:
    return [r for r in output(note).get("results", []) if isinstance(r, dict)]


def entry_findings(note: Note, e: Exchange, entry: dict[str, Any], shown: dict[str, Any] | None,
                   fields: dict[str, Any]) -> list[Finding]:
    """The entry is shown, with each field exactly as the directory returned it."""
    label = f"{step_label(note)}: entry {entry.get('national_id') or entry.get('finess')}"
    if shown is None:
        return [quote(e, f"{label} returned by the directory is not shown", where="output.results")]
    out = []
    for key, expected in fields.items():
        got = shown.get(key)
        ok = (all(part in (got or "") for part in expected) if key == "name"
              else set(expected) <= set(got or []) if key == "addresses" else got == expected)
        if not ok:
            out.append(quote(e, f"{label}: {key} not shown as the directory returned it", where=f"output.results[].{key}",
                             expected=expected, got=got))
    return out


def practitioner_fields(p: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": [p["given_name"], p["family_name"]], "profession": p.get("profession"),
                              "addresses": [p["mss_address"]]}
    if p.get("specialty"):
        fields["specialty"] = p["specialty"]
    return fields


def not_searched(what: str) -> Verdict:
    return not_exercised(Finding(f"no {what} search reached the directory in this run"))


# ---------------------------------------------------------------------------------------------


@check("directory.search_by_national_id", verifies=["DIRECTORY-001"], scenario=SCENARIO, reads_all=True)
def search_by_national_id(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A practitioner found by national id is shown with name, profession, specialty and addresses as returned."""
    steps = [(n, e, body) for n, e, body in searches(trace, "/practitioners") if "national_id" in n.data.get("input", {})]
    if not steps:
        return not_searched("practitioner-by-national-id")
    findings = []
    for note, e, body in steps:
        wanted = note.data["input"]["national_id"]
        if e.query.get("national_id", [None])[0] not in (wanted, wanted[1:]):
            findings.append(quote(e, f"{step_label(note)}: the search does not ask for national id {wanted}",
                                  where="request.query.national_id", expected=wanted, got=e.query.get("national_id")))
        shown = {r.get("id"): r for r in results(note)}
        if not body:
            findings.append(quote(e, f"{step_label(note)}: the directory returned no entry", where="response"))
        for p in body:
            findings += entry_findings(note, e, p, shown.get(p["national_id"]), practitioner_fields(p))
    return verdict(findings, len(steps), "search(es)")


@check("directory.search_by_name", verifies=["DIRECTORY-002"], scenario=SCENARIO, reads_all=True)
def search_by_name(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Names are sent upper-cased without diacritics, and every entry the directory returns is shown."""
    steps = [(n, e, body) for n, e, body in searches(trace, "/practitioners") if "family_name" in n.data.get("input", {})]
    if not steps:
        return not_searched("practitioner-by-name")
    findings = []
    for note, e, body in steps:
        typed = note.data["input"]
        sent = (e.query.get("name") or [""])[0]
        family = normalise_name(typed["family_name"])
        if sent != normalise_name(sent) or family not in sent:
            findings.append(quote(e, f"{step_label(note)}: the name is not sent upper-cased without diacritics",
                                  where="request.query.name", expected=family + (
                                      " " + normalise_name(typed["given_name"]) if typed.get("given_name") else ""),
                                  got=sent))
        shown = {r.get("id") for r in results(note)}
        missing = [p["national_id"] for p in body if p["national_id"] not in shown]
        if missing:
            findings.append(quote(e, f"{step_label(note)}: entries returned by the directory are not shown",
                                  where="output.results[].id", expected=[p["national_id"] for p in body],
                                  got=sorted(shown)))
    return verdict(findings, len(steps), "search(es)")


@check("directory.search_organisation", verifies=["DIRECTORY-003"], scenario=SCENARIO, reads_all=True)
def search_organisation(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An organisation found by FINESS-like id is shown with its name and messaging addresses as returned."""
    steps = searches(trace, "/organisations")
    if not steps:
        return not_searched("organisation")
    findings = []
    for note, e, body in steps:
        shown = {r.get("id"): r for r in results(note)}
        if not body:
            findings.append(quote(e, f"{step_label(note)}: the directory returned no organisation", where="response"))
        for o in body:
            findings += entry_findings(note, e, o, shown.get(o["finess"]),
                                       {"name": o["name"], "kind": "organisation", "addresses": [o["mss_address"]]})
    return verdict(findings, len(steps), "search(es)")


@check("directory.inactive_not_used", verifies=["DIRECTORY-005"], scenario=SCENARIO, reads_all=True)
def inactive_not_used(run: RunView, ctx: EvalContext) -> Verdict:
    """Inactive entries are shown as inactive and never used as recipients, in every scenario."""
    findings, exercised = [], 0
    for trace, note in ((t, n) for t in run for n in t.performed("directory.search")):
        shown = {r.get("id"): r for r in results(note)}
        for e in step_exchanges(trace, note, "directory"):
            for entry in answer_body(trace, e) if e.method == "GET" else []:
                key = entry.get("national_id") or entry.get("finess")
                if entry.get("active", True) or key not in shown:
                    continue
                exercised += 1
                if shown[key].get("active") is not False:
                    findings.append(quote(e, f"{step_label(note)}: inactive entry {key} shown as active",
                                          where="output.results[].active", expected=False, got=shown[key].get("active")))
    for trace, note in ((t, n) for t in run for n in t.performed("message.send")):
        book = directory_addresses(trace)
        inactive = [a for a in note.data.get("input", {}).get("recipients", [])
                    if address_key(a) in book and not book[address_key(a)]["active"]]
        if inactive:
            exercised += 1
            findings += refused_before_sending(trace, note, inactive, "inactive in the directory")
    if not exercised:
        return not_exercised(Finding("the run never met an inactive directory entry, so the rule could not be verified"))
    return verdict(findings, exercised, "use(s) of inactive entries")


# ---------------------------------------------------------------------------------------------
# DIRECTORY-006: cache freshness


def max_age(e: Exchange) -> float | None:
    m = re.search(r"max-age=(\d+)", e.response_headers.get("cache-control", ""))
    return float(m[1]) if m else None


def _past_max_age(note: Note, served: Exchange) -> tuple[float, float] | None:
    """(seconds since ``served``, its max-age) when the repeated search ``note`` came after the answer's max-age — the
    situation DIRECTORY-006 is about —; None when it came within it (or either time is unknown)."""
    age, served_at, used_at = max_age(served), when(served.raw), when(note.raw)
    if age is None or served_at is None or used_at is None:
        return None
    elapsed = (used_at - served_at).total_seconds()
    return (elapsed, age) if elapsed > age else None


def _stale_findings(trace: TraceView, note: Note, served: Exchange, elapsed: float, age: float) -> list[Finding]:
    """A repeated search after its answer's max-age must revalidate with the directory (If-None-Match: its ETag)."""
    again = [e for e in step_exchanges(trace, note, "directory") if query_key(e) == query_key(served)]
    if not again:
        return [quote(served, f"{step_label(note)}: reused this answer {elapsed:.1f} s after it, past its max-age of "
                      f"{age:g} s, without asking the directory again",
                      where="response.headers.cache-control", expected="a revalidation request", got="none")]
    etag = served.response_headers.get("etag")
    sent = again[-1].request_headers().get("if-none-match")
    if sent is not None and etag and sent != etag:
        return [quote(again[-1], f"{step_label(note)}: revalidated with an ETag the directory did not serve for it",
                      where="request.headers.if-none-match", expected=etag, got=sent)]
    return []


@check("directory.cache_fresh", verifies=["DIRECTORY-006"], scenario=SCENARIO)
def cache_fresh(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A cached directory answer is used only within its max-age, then revalidated with its ETag."""
    findings, repeated, expired = [], 0, 0
    steps = trace.performed("directory.search")
    for i, note in enumerate(steps):
        earlier = [n for n in steps[:i] if n.data.get("input") == note.data.get("input")]
        if not earlier:
            continue
        # the answer the software holds: the last one it was served (a repeat in between may have asked nothing)
        previous = next((gets for n in reversed(earlier)
                         if (gets := [e for e in step_exchanges(trace, n, "directory") if e.method == "GET"])), [])
        if not previous:
            continue
        repeated += 1
        past = _past_max_age(note, previous[-1])
        if past is not None:  # only a repeat after the answer's max-age can show whether the software revalidates
            expired += 1
            findings += _stale_findings(trace, note, previous[-1], *past)
        now = [e for e in step_exchanges(trace, note, "directory") if e.method == "GET"]
        if now and now[-1].status == 304 and output(note).get("results") != output(earlier[-1]).get("results"):
            findings.append(quote(now[-1], f"{step_label(note)}: the directory answered 304 (unchanged), yet the "
                                  "software shows other entries than before", where="output.results",
                                  expected=output(earlier[-1]).get("results"), got=output(note).get("results")))
    if not repeated:
        return not_exercised(Finding("the scenario never repeated a directory search, so caching could not be verified"))
    if not expired and not findings:  # each repeat within max-age: reusing the answer was allowed, nothing to judge
        return not_exercised(Finding(f"no repeated directory search ({repeated}) came after its answer's max-age, so "
                                     "whether the software revalidates a stale answer could not be verified"))
    return verdict(findings, expired or repeated, "repeated search(es) past max-age" if expired else
                   "repeated search(es)")
