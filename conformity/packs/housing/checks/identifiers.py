"""Checks: housing identifiers (HOUSINGID) — RNB ids, the geocoder's key and score, the registry's statuses."""

from __future__ import annotations

import re

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import quote
from conformity.checks.model import Finding, MissingEvidence, Verdict, failed
from conformity.checks.registry import check
from conformity.checks.trace import Exchange, Note, RunView, TraceView
from conformity.packs.housing.checks.common import answer_is, answered, during, judged, output, step, time_of, verdict
from conformity.packs.housing.rules import normalise_rnb
from conformity.packs.housing.scenarios.identifiers import ACTION, IDENTIFY

SCENARIO = IDENTIFY.id


def lookups(exchanges: list[Exchange]) -> list[Exchange]:
    return [e for e in exchanges if e.service == "buildings" and e.method == "GET"]


def compact(value: str) -> str:
    """An RNB id as typed, without its dashes and blanks, in upper case (what a look-up of it would send)."""
    return re.sub(r"[\s-]", "", value).upper()


def looked_up(e: Exchange) -> str:
    """The RNB id a look-up by id asks for (``/buildings/{id}``), compacted."""
    return compact(e.local_path.rsplit("/", 1)[-1]) if e.local_path.count("/") >= 2 else ""


def geocoded(note: Note, exchanges: list[Exchange]) -> dict[str, object]:
    """The geocoder's first feature during the step; a check decorated ``@judged`` fails when the software did not
    geocode the address (MissingEvidence quoting its answer)."""
    feature = first_feature(exchanges)
    if feature is None:
        raise MissingEvidence(answered(note, "the software did not geocode the address", where="status",
                                       expected="a geocoder search", got=output(note)))
    return feature


def first_feature(exchanges: list[Exchange]) -> dict[str, object] | None:
    for e in exchanges:
        body = e.response_json
        if e.service == "geocoder" and isinstance(body, dict) and body.get("features"):
            props = body["features"][0].get("properties")
            return props if isinstance(props, dict) else None
    return None


@check("housing.rnb_id_normalised", verifies=["HOUSINGID-001"], scenario=SCENARIO)
@judged
def rnb_id_normalised(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An RNB id written with dashes and in lower case is looked up in its 12-character form, and kept so."""
    note = step(trace, ACTION, "dashed_id")
    typed = str(note.data.get("input", {}).get("rnb_id", ""))
    expected = normalise_rnb(typed)
    calls = lookups(during(trace, note))
    if not calls:
        return failed(
            answered(
                note,
                "the software looked no building up for an RNB id written with dashes",
                where="status",
                expected=f"a look-up of {expected}",
                got=output(note),
            )
        )
    # and at any other moment (a prefetch after the step answered): a look-up of that id not in its normalised form
    seen = {e.seq for e in calls}
    later = [
        e for e in lookups(list(trace))
        if expected and e.seq not in seen and looked_up(e) == expected and e.local_path != f"/buildings/{expected}"
    ]
    findings = [
        quote(
            e,
            "the RNB id was sent as typed, not normalised" + ("" if e.seq in seen else ", outside its step"),
            where="request.path",
            expected=f"/buildings/{expected}",
            got=e.local_path,
        )
        for e in calls + later
        if e.local_path != f"/buildings/{expected}"
    ]
    findings += answer_is(note, "rnb_id", expected, "the software did not keep the normalised RNB id")
    return verdict(findings, f"{typed} looked up and kept as {expected}")


@check("housing.rnb_id_invalid_refused", verifies=["HOUSINGID-002"], scenario=SCENARIO)
@judged
def rnb_id_invalid_refused(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An RNB id with a character outside the registry's alphabet is refused before any look-up."""
    note = step(trace, ACTION, "invalid_id")
    typed = compact(str(note.data.get("input", {}).get("rnb_id", "")))
    # a look-up of an id as an earlier step typed it, sent late into this step (a prefetch), is that step's breach
    # (HOUSINGID-001), not this one's; any other look-up here (a corrected id too) is this one's
    before = {str(n.data.get("input", {}).get("rnb_id", "")) for n in trace.notes("driver.perform")
              if n.seq < note.seq} - {""}
    inside = [e for e in lookups(during(trace, note)) if e.local_path.rsplit("/", 1)[-1] not in before]
    # and at any other moment (a background prefetch after the step answered): a look-up of that very id
    seen = {e.seq for e in inside}
    later = [
        e
        for e in lookups(list(trace))
        if typed and e.seq not in seen
        and typed in (looked_up(e), compact(e.param("rnb_id") or ""))
    ]
    findings = [
        quote(
            e,
            "the software sent an invalid RNB id to the registry instead of refusing it",
            where="request.path",
            expected="no look-up",
            got=e.local_path,
        )
        for e in inside + later
    ]
    findings += answer_is(note, "status", "invalid", "the software did not report the RNB id as invalid")
    return verdict(findings, "the invalid RNB id was refused locally")


@check("housing.ban_key_kept", verifies=["HOUSINGID-003"], scenario=SCENARIO)
@judged
def ban_key_kept(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An address is geocoded, and the building is looked up by the geocoder's interoperability key, kept as is."""
    note = step(trace, ACTION, "complete")
    exchanges = during(trace, note)
    feature = geocoded(note, exchanges)
    key = feature.get("id")
    findings = [
        quote(
            e,
            "the building was looked up by another key than the geocoder's cle_interop",
            where="request.query.cle_interop",
            expected=key,
            got=e.param("cle_interop"),
        )
        for e in lookups(exchanges)
        if e.param("cle_interop") != key
    ]
    if not lookups(exchanges):
        findings.append(
            answered(
                note,
                "the software looked no building up for the geocoded address",
                where="status",
                expected="a registry look-up",
                got=output(note),
            )
        )
    findings += answer_is(note, "cle_interop", key, "the software did not keep the address's interoperability key")
    findings += stale_keys(trace)
    return verdict(findings, f"address geocoded as {key} and looked up by it")


def geocoder_keys(exchanges: list[Exchange]) -> set[str]:
    """The interoperability keys of every feature the geocoder answered in ``exchanges``."""
    keys = set()
    for e in exchanges:
        body = e.response_json
        if e.service == "geocoder" and isinstance(body, dict) and isinstance(body.get("features"), list):
            for f in body["features"]:
                props = f.get("properties") if isinstance(f, dict) else None
                if isinstance(props, dict) and isinstance(props.get("id"), str):
                    keys.add(props["id"])
    return keys


def query_of(e: Exchange) -> str:
    """A geocoder search's query as a cache would key it: case and runs of blanks aside (the step's address, typed,
    is compared the same way)."""
    return " ".join((e.param("q") or "").split()).casefold()


def stale_keys(trace: TraceView) -> list[Finding]:
    """Every step finding a building by address, not only the complete address's, that looks one up: at least one
    look-up by a key the geocoder answered for that step's address (in the step, or earlier to the same query: a cache
    of that address's geocoding). Looking up only by a key it answered for another address (a geocoding kept from the
    step before) presents another building as this one's. (A look-up by another key beside the step's own is a
    background request of another step, judged by that step's rules.)"""
    findings = []
    for note in trace.performed(ACTION):
        typed = note.data.get("input", {}).get("address")
        if not isinstance(typed, str):
            continue
        exchanges = during(trace, note)
        calls = [e for e in lookups(exchanges) if e.param("cle_interop") is not None]
        if not calls:
            continue
        asked = {query_of(e) for e in exchanges if e.service == "geocoder"} | {" ".join(typed.split()).casefold()}
        earlier = [g for g in trace.exchanges("geocoder") if g.seq < calls[-1].seq and query_of(g) in asked]
        own = geocoder_keys([g for g in exchanges if g.seq < calls[-1].seq]) | geocoder_keys(earlier)
        if not any(e.param("cle_interop") in own for e in calls):
            findings.append(
                quote(
                    calls[0],
                    f"in step {note.data.get('name')!r} the building was looked up only by a key the geocoder did not "
                    "give for that step's address (one kept from another geocoding)",
                    where="request.query.cle_interop",
                    expected=sorted(own) or "a key the geocoder answered for the address",
                    got=sorted({str(e.param("cle_interop")) for e in calls}),
                )
            )
    return findings


@check("housing.min_score_sent", verifies=["HOUSINGID-004"], scenario=SCENARIO, reads_all=True)
def min_score_sent(run: RunView, ctx: EvalContext) -> Verdict:
    """Every look-up by address, in every scenario (identifying a building, filing a DPE, a quote's home...), passes a
    min_score at least the referential's."""
    minimum = float(ctx.param("HOUSINGID-004", "min_score", 0.4))
    calls = [
        e
        for trace in run
        for e in trace.exchanges("buildings", path="/buildings")
        if e.param("cle_interop") is not None
    ]
    if not calls:
        return failed(Finding("the software made no look-up by address"))
    findings = []
    for e in calls:
        sent = e.param("min_score")
        try:
            ok = sent is not None and float(sent) >= minimum
        except ValueError:
            ok = False
        if not ok:
            findings.append(
                quote(
                    e,
                    "the look-up by address does not ask for a minimum geocoding score",
                    where="request.query.min_score",
                    expected=f">= {minimum}",
                    got=sent,
                )
            )
    scenarios = len({e.scenario for e in calls})
    return verdict(
        findings, f"{len(calls)} look-up(s) by address in {scenarios} scenario(s), each with min_score >= {minimum}"
    )


@check("housing.incomplete_geocoding_blocks", verifies=["HOUSINGID-005"], scenario=SCENARIO)
@judged
def incomplete_geocoding_blocks(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An address found only at street level (or coarser) is reported incomplete: no building is looked up for it."""
    note = step(trace, ACTION, "incomplete")
    exchanges = during(trace, note)
    feature = geocoded(note, exchanges)
    inside = lookups(exchanges)
    seen, key = {e.seq for e in inside}, feature.get("id")
    # and at any other moment (a background prefetch after the step answered): a look-up by that address's key
    later = [e for e in lookups(list(trace)) if key and e.seq not in seen and e.param("cle_interop") == key]
    findings = [
        quote(
            e,
            f"the software looked a building up for an address geocoded at {feature.get('type')} level"
            + ("" if e.seq in seen else ", outside its step"),
            where="request.query",
            expected="no look-up",
            got=e.query,
        )
        for e in inside + later
    ]
    findings += answer_is(note, "status", "incomplete", "the software did not report the geocoding as incomplete")
    return verdict(findings, "the street-level geocoding was reported incomplete")


@check("housing.low_score_warned", verifies=["HOUSINGID-006"], scenario=SCENARIO)
@judged
def low_score_warned(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A house-number address under the warning score is still used, with a low-score warning for the user."""
    limit = float(ctx.param("HOUSINGID-006", "warning_score", 0.7))
    note = step(trace, ACTION, "low_score")
    feature = first_feature(during(trace, note))
    score = feature.get("score") if feature else None
    if not isinstance(score, (int, float)) or score >= limit:
        return failed(
            answered(
                note,
                "the low-score address was not geocoded (or not under the warning score)",
                where="score",
                expected=f"< {limit}",
                got=score,
            )
        )
    out = output(note)
    findings = []
    warnings = out.get("warnings")
    if not (isinstance(warnings, list) and "low_score" in warnings):  # a list: not inside a text or a dict's keys
        findings.append(
            answered(
                note,
                f"geocoding score {score} is under {limit}: the software must warn",
                where="warnings",
                expected=["low_score"],
                got=out.get("warnings"),
            )
        )
    if out.get("status") != "ok":
        findings.append(
            answered(
                note,
                "a low score only warns: the building must still be found",
                where="status",
                expected="ok",
                got=out.get("status"),
            )
        )
    return verdict(findings, f"score {score} warned and the building found")


@check("housing.registry_statuses_handled", verifies=["HOUSINGID-007"], scenario=SCENARIO)
@judged
def registry_statuses_handled(trace: TraceView, ctx: EvalContext) -> Verdict:
    """The registry's no_result and score_too_low answers are reported as such, never as a building."""
    findings = []
    for name, status in (("no_building", "no_result"), ("poor_score", "score_too_low")):
        note = step(trace, ACTION, name)
        answers = [
            e
            for e in lookups(during(trace, note))
            if isinstance(e.response_json, dict) and e.response_json.get("status") == status
        ]
        if not answers:
            findings.append(
                answered(
                    note,
                    f"the registry never answered {status} in step {name!r}: the software did not look the building up",
                    where="status",
                    expected=status,
                    got=output(note),
                )
            )
            continue
        out = output(note)
        if out.get("status") != status or out.get("rnb_id"):
            findings.append(
                answered(
                    note,
                    f"the registry answered {status} (exchange {answers[-1].seq}); the software reported otherwise",
                    where="status",
                    expected={"status": status, "rnb_id": None},
                    got={"status": out.get("status"), "rnb_id": out.get("rnb_id")},
                )
            )
    return verdict(findings, "no_result and score_too_low reported as such")


@check("housing.registry_retry_after", verifies=["HOUSINGID-008"], scenario=SCENARIO)
@judged
def registry_retry_after(trace: TraceView, ctx: EvalContext) -> Verdict:
    """After a 503 with Retry-After, the look-up is retried, no sooner than announced, and succeeds."""
    note = step(trace, ACTION, "retry")
    calls = lookups(during(trace, note))
    refused = [e for e in calls if e.status == 503]
    if not refused:
        return failed(
            answered(
                note,
                "the registry's 503 was never met: the software did not look the building up",
                where="status",
                expected="a look-up answered 503",
                got=output(note),
            )
        )
    first = refused[0]
    wait = float(first.response_headers.get("retry-after", "1"))
    later = [e for e in calls if e.seq > first.seq]
    if not later:
        return failed(
            quote(
                first,
                "the look-up answered 503 was never retried",
                where="response.status",
                expected="a retry",
                got=503,
            )
        )
    gap = (time_of(later[0]) - time_of(first)).total_seconds()
    findings = []
    if gap + 0.05 < wait:
        findings.append(
            quote(
                later[0],
                f"retried {gap:.2f} s after a 503 that asked for {wait:g} s",
                where="time",
                expected=f">= {wait:g} s",
                got=f"{gap:.2f} s",
            )
        )
    findings += answer_is(note, "status", "ok", "the retried look-up did not find the building")
    return verdict(findings, f"retried after {gap:.2f} s (Retry-After {wait:g})")


@check("housing.parcel_lookup", verifies=["HOUSINGID-009"], scenario=SCENARIO)
@judged
def parcel_lookup(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A building is found by its cadastral parcel, and its RNB id kept."""
    note = step(trace, ACTION, "parcel")
    calls = [e for e in lookups(during(trace, note)) if e.param("parcel")]
    if not calls:
        return failed(
            answered(
                note,
                "the software did not look the building up by parcel",
                where="status",
                expected="a look-up by parcel",
                got=output(note),
            )
        )
    body = calls[-1].response_json if isinstance(calls[-1].response_json, dict) else {}
    found = [b.get("rnb_id") for b in body.get("buildings", [])]
    if not found or output(note).get("rnb_id") != found[0]:
        return failed(
            answered(
                note,
                "the building the registry found on the parcel was not kept",
                where="rnb_id",
                expected=found[0] if found else "a building",
                got=output(note).get("rnb_id"),
            )
        )
    return verdict([], f"parcel {calls[-1].param('parcel')} → {found[0]}")
