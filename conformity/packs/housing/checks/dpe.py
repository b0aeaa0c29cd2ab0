"""Checks: the DPE exchange (DPE) — the documents as uploaded, test mode first, blocking findings, the class, the
number."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import performed, quote
from conformity.checks.model import Finding, MissingEvidence, Verdict, failed
from conformity.checks.registry import check
from conformity.checks.trace import Exchange, TraceView
from conformity.packs.housing.checks.common import answer_is, answered, during, judged, output, step, verdict
from conformity.packs.housing.dpe import BLOCKING, DpeInvalid, identity, parse_dpe, read_dpe, read_written
from conformity.packs.housing.rules import dpe_class, is_dpe_number, single_class, thresholds_of
from conformity.packs.housing.scenarios.dpe import ACTION, FILE, ON_BOUNDS

SCENARIO = FILE.id


@dataclass(frozen=True, slots=True)
class Upload:
    """One DPE the software sent to the observatory: the exchange, its mode, the document's values (or errors), and
    what it writes (``written``: its values whether the schema accepts it or not; None when it is no XML)."""

    exchange: Exchange
    mode: str | None
    values: dict[str, Any] | None
    errors: tuple[str, ...]
    written: dict[str, Any] | None = None
    #: which document it is: its meaning (the observatory's identity) when the schema accepts it, else its bytes
    document: str = ""

    @property
    def findings(self) -> list[dict[str, Any]]:
        body = self.exchange.response_json
        if not isinstance(body, dict):
            return []
        found = body.get("controle_coherence") or body.get("warnings") or []
        return [f for f in found if isinstance(f, dict)]


def mode_of(e: Exchange) -> str | None:
    """The upload's mode as the observatory read it: the last ``mode`` of the query, as every FastAPI route reads a
    repeated parameter (``?mode=test&mode=real``, a client appending ``mode=real`` to a URL configured with
    ``?mode=test``, files for real)."""
    values = e.query.get("mode")
    return values[-1] if values else e.param("mode")


def uploads(exchanges: list[Exchange]) -> list[Upload]:
    out = []
    for e in exchanges:
        if e.service != "observatory" or e.method != "POST" or e.local_path != "/dpe":
            continue
        data = e.request_body_bytes()
        try:
            root = parse_dpe(data)
            values: dict[str, Any] | None = read_dpe(root)
            errors: tuple[str, ...] = ()
            document = identity(root)
        except DpeInvalid as exc:
            values, errors = None, tuple(exc.errors)
            document = "sha256:" + hashlib.sha256(data).hexdigest()
        written = values if values is not None else read_written(data)
        out.append(Upload(e, mode_of(e), values, errors, written, document))
    return out


def blocks(u: Upload) -> bool:
    """Whether a test upload was answered with a blocking coherence finding."""
    return u.mode == "test" and any(f.get("type") in BLOCKING for f in u.findings)


def all_uploads(trace: TraceView) -> list[Upload]:
    return uploads(trace.exchanges("observatory"))


def readable_uploads(trace: TraceView) -> list[Upload]:
    """The uploads whose DPE could be read (none: MissingEvidence, which fails a ``@judged`` check)."""
    sent = [u for u in all_uploads(trace) if u.written is not None]
    if not sent:
        raise MissingEvidence(Finding("the software uploaded no readable DPE"))
    return sent


def filed_for_real(u: Upload, message: str) -> Finding:
    """The finding of a DPE sent for real where none should have been (quoting its upload)."""
    return quote(u.exchange, message, where="request.query.mode", expected="no real upload", got="real")


@check("housing.dpe_schema_valid", verifies=["DPE-001"], scenario=SCENARIO)
def dpe_schema_valid(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Every DPE the software uploads is valid against the model schema (v2.6)."""
    sent = all_uploads(trace)
    if not sent:
        return failed(Finding("the software uploaded no DPE"))
    findings = [
        quote(
            u.exchange,
            "the DPE is not valid against the model schema (v2.6)",
            where="request.body",
            expected="valid",
            got=list(u.errors[:5]),
        )
        for u in sent
        if u.values is None
    ]
    return verdict(findings, f"{len(sent)} upload(s), each valid against the model schema")


@check("housing.dpe_test_before_real", verifies=["DPE-002"], scenario=SCENARIO)
def dpe_test_before_real(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Every DPE filed for real was first sent in test mode, the same document, and found receivable."""
    sent = all_uploads(trace)
    real = [u for u in sent if u.mode == "real"]
    if not real:
        return failed(Finding("the software filed no DPE for real"))
    findings = []
    for u in real:  # the very same document: its meaning when the schema accepts it (the bytes written anew), else its bytes
        tested = [t for t in sent if t.mode == "test" and t.exchange.seq < u.exchange.seq and t.document == u.document]
        if not tested:
            findings.append(
                quote(
                    u.exchange,
                    "the DPE was filed for real without being sent in test mode first",
                    where="request.query.mode",
                    expected="a test-mode upload of the same document first",
                    got="real",
                )
            )
        elif not (
            isinstance(tested[-1].exchange.response_json, dict)
            and tested[-1].exchange.response_json.get("receivable") is True
        ):
            findings.append(
                quote(
                    u.exchange,
                    "the DPE was filed for real although its test found it not receivable",
                    where="request.query.mode",
                    expected="no real upload",
                    got=f"test answer of exchange {tested[-1].exchange.seq}",
                )
            )
    return verdict(findings, f"{len(real)} DPE(s) tested, then filed")


@check("housing.dpe_blocking_not_filed", verifies=["DPE-003"], scenario=SCENARIO)
@judged
def dpe_blocking_not_filed(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A DPE with a blocking coherence finding (erreur_logiciel, erreur_saisie) in test mode is not filed."""
    note = step(trace, ACTION, "blocking")
    sent = uploads(during(trace, note))
    blocked = [u for u in sent if blocks(u)]
    if not blocked:
        return failed(
            answered(
                note,
                "the DPE with an input error was never tested: its refusal is not shown",
                where="filed",
                expected="a test upload with an erreur_saisie",
                got=output(note),
            )
        )
    findings = [
        filed_for_real(u, "a DPE with blocking findings was sent for real")
        for u in sent
        if u.mode == "real"
    ]
    # the same document filed for real at any other moment (a queue filing it after the step answered, a retry)
    kept_back = {u.document for u in blocked}
    findings += [
        filed_for_real(u, "the DPE whose test found blocking findings was sent for real later, outside its step")
        for u in all_uploads(trace)
        if u.mode == "real" and u.document in kept_back and u.exchange.seq not in {s.exchange.seq for s in sent}
    ]
    findings += answer_is(note, "filed", False, "the software reported a DPE with blocking findings as filed")
    return verdict(findings, "the blocking DPE was kept back")


def distinct(found: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """Coherence findings once each, as (type, message): the same finding answered by the test and by the filing, or
    shown twice, counts once; a type or message of another JSON type is read as its text (never raises)."""
    return {(str(f.get("type")), str(f.get("message", ""))) for f in found}


@check("housing.dpe_findings_reported", verifies=["DPE-004"], scenario=SCENARIO)
@judged
def dpe_findings_reported(trace: TraceView, ctx: EvalContext) -> Verdict:
    """The observatory's coherence findings (blocking and warnings) are handed to the user with their type."""
    findings: list[Finding] = []
    shown = 0
    for name in ("blocking", "low_score"):
        note = step(trace, ACTION, name)
        said = distinct(f for u in uploads(during(trace, note)) for f in u.findings)
        if not said:
            findings.append(
                answered(
                    note,
                    f"the observatory said nothing in step {name!r}: the rule is not shown",
                    where="findings",
                    expected="coherence findings",
                    got=output(note),
                )
            )
            continue
        given = output(note).get("findings")
        reported = distinct(f for f in given if isinstance(f, dict)) if isinstance(given, list) else set()
        missing = Counter(t for t, _ in said) - Counter(t for t, _ in reported)
        if missing:
            findings.append(
                answered(
                    note,
                    "the software did not report every coherence finding the observatory gave "
                    f"({', '.join(f'{n} {t}' for t, n in sorted(missing.items()))} missing)",
                    where="findings",
                    expected=sorted(f"{t}: {m}" for t, m in said),
                    got=given if not isinstance(given, list) else sorted(f"{t}: {m}" for t, m in reported),
                )
            )
        shown += len(said)
    return verdict(findings, f"{shown} coherence finding(s) reported with their type")


@check("housing.dpe_class_recomputed", verifies=["DPE-005"], scenario=SCENARIO)
@judged
def dpe_class_recomputed(trace: TraceView, ctx: EvalContext) -> Verdict:
    """The A–G class written in each DPE is the one of the double threshold (the worse of energy and emissions)."""
    thresholds = thresholds_of(dict(ctx.parameters.get("DPE-005", {})))
    sent = readable_uploads(trace)
    findings = []
    for u in sent:
        v = u.written or {}
        if v.get("ep_conso") is None or v.get("emissions") is None:
            continue
        expected = dpe_class(v["ep_conso"], v["emissions"], thresholds)
        ges = single_class(v["emissions"], [t[2] for t in thresholds])
        if (v.get("energy_class"), v.get("emissions_class")) != (expected, ges):
            findings.append(
                quote(
                    u.exchange,
                    f"the DPE's classes differ from the double threshold for "
                    f"{v['ep_conso']:g} kWh/m²/an and {v['emissions']:g} kgCO2/m²/an",
                    where="request.body/logement/sortie",
                    expected={"classe_bilan_dpe": expected, "classe_emission_ges": ges},
                    got={"classe_bilan_dpe": v.get("energy_class"), "classe_emission_ges": v.get("emissions_class")},
                )
            )
    return verdict(findings, f"{len(sent)} DPE(s) with the classes of the double threshold")


@check("housing.dpe_software_identified", verifies=["DPE-006"], scenario=SCENARIO)
@judged
def dpe_software_identified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Each DPE names the software that made it: its registration id and version."""
    expected = {"software_id": ctx.software.get("registration_id"), "software_version": ctx.software.get("version")}
    sent = readable_uploads(trace)
    findings = [
        quote(
            u.exchange,
            "the DPE does not name the software under test",
            where="request.body/administratif/diagnostiqueur",
            expected=expected,
            got={k: (u.written or {}).get(k) for k in expected},
        )
        for u in sent
        if any((u.written or {}).get(k) != v for k, v in expected.items())
    ]
    return verdict(findings, f"{len(sent)} DPE(s) naming {expected['software_id']} {expected['software_version']}")


@check("housing.dpe_number_kept", verifies=["DPE-007"], scenario=SCENARIO)
@judged
def dpe_number_kept(trace: TraceView, ctx: EvalContext) -> Verdict:
    """The 13-character DPE number the observatory assigns is kept as is."""
    findings: list[Finding] = []
    kept = []
    for name in ("complete", "low_score"):
        note = step(trace, ACTION, name)
        filed = [u for u in uploads(during(trace, note)) if u.mode == "real" and u.exchange.status == 201]
        if not filed:
            findings.append(
                answered(
                    note,
                    f"no DPE was filed in step {name!r}",
                    where="filed",
                    expected=True,
                    got=output(note).get("filed"),
                )
            )
            continue
        body = filed[-1].exchange.response_json if isinstance(filed[-1].exchange.response_json, dict) else {}
        number = body.get("numero_dpe")
        got = output(note).get("numero_dpe")
        if got != number or not is_dpe_number(str(got)):
            findings.append(
                answered(
                    note,
                    f"the software did not keep the DPE number of exchange {filed[-1].exchange.seq}",
                    where="numero_dpe",
                    expected=number,
                    got=got,
                )
            )
        kept.append(str(number))
    return verdict(findings, f"DPE number(s) {', '.join(kept)} kept")


@check("housing.dpe_geolocated", verifies=["DPE-008"], scenario=SCENARIO)
@judged
def dpe_geolocated(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Each filed DPE carries the address's interoperability key, geocoding type and score, and the building's RNB id
    as the services gave them.

    The RNB id is required of every DPE here, not by the model schema: the observatory's model keeps ``rnb_id``
    optional (a DPE without it is received with a ``warning_logiciel``, as the real observatory blocks an incomplete
    geocoding but only warns of a missing building), while DPE-008 asks the labelled software for it. So a software
    that never asks the building registry, and files DPEs with no RNB id, fails here: the id it should carry is the
    one the registry answered, else the one the registry holds for the geocoded address (the session's fixtures)."""
    findings: list[Finding] = []
    registry = {str(b.get("cle_interop")): b.get("rnb_id") for b in trace.fixtures.get("buildings", [])}
    # every visit of a located home: the visits on a class bound too (a geolocation kept from the DPE before is
    # another building's)
    on_bounds = [n for n in ON_BOUNDS if performed(trace, ACTION, n)]
    for name in ("complete", "low_score", *on_bounds):
        note = step(trace, ACTION, name)
        exchanges = during(trace, note)
        features = [
            e.response_json["features"][0]["properties"]
            for e in exchanges
            if e.service == "geocoder" and isinstance(e.response_json, dict) and e.response_json.get("features")
        ]
        found = [
            b["rnb_id"]
            for e in exchanges
            if e.service == "buildings" and isinstance(e.response_json, dict)
            for b in e.response_json.get("buildings", [])
            if isinstance(b, dict) and b.get("rnb_id")
        ]
        sent = [u for u in uploads(exchanges) if u.written is not None]
        if not features:
            findings.append(
                answered(
                    note,
                    f"the address of step {name!r} was not geocoded",
                    where="",
                    expected="a geocoder search",
                    got=output(note),
                )
            )
            continue
        key = features[-1].get("id")
        building = found[-1] if found else registry.get(str(key))
        for u in sent:
            want = {
                "ban_id": key,
                "ban_type": features[-1].get("type"),
                "ban_score": features[-1].get("score"),
                "rnb_id": building or "the RNB id the registry answers",
            }
            got = {k: (u.written or {}).get(k) for k in want}
            if got != want:
                missing = not got["rnb_id"]
                findings.append(
                    quote(
                        u.exchange,
                        "the DPE carries no RNB building id"
                        + ("" if found else ": the software never asked the building registry")
                        if missing
                        else "the DPE's geolocation differs from what the geocoder and the registry answered",
                        where="request.body/administratif/geolocalisation",
                        expected=want,
                        got=got,
                    )
                )
        if sent and not found and not any(e.service == "buildings" for e in exchanges):
            findings.append(
                answered(
                    note,
                    f"the software filed the DPE of step {name!r} without asking the building registry for the "
                    f"building at {key}",
                    where="",
                    expected="a registry look-up by the address's cle_interop",
                    got=output(note),
                )
            )
    return verdict(findings, "every DPE geolocated as the services answered, with its building's RNB id")


@check("housing.dpe_incomplete_not_filed", verifies=["DPE-009"], scenario=SCENARIO)
@judged
def dpe_incomplete_not_filed(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A DPE whose address is geocoded only at street level is not filed."""
    note = step(trace, ACTION, "incomplete")
    exchanges = during(trace, note)
    if not any(e.service == "geocoder" for e in exchanges):
        return failed(
            answered(
                note,
                "the incompletely geocoded address was never geocoded",
                where="filed",
                expected="a geocoder search",
                got=output(note),
            )
        )
    # a document an earlier step's test found blocking, filed now, is that step's DPE (a queue filing it late): DPE-003
    # judges it. Any other document filed now is this step's (even one filed before: a location reused is no excuse)
    start = min(e.seq for e in exchanges)
    earlier = {u.document for u in all_uploads(trace) if u.exchange.seq < start and blocks(u)}
    findings = [
        filed_for_real(u, "a DPE whose address is geocoded at street level was filed")
        for u in uploads(exchanges)
        if u.mode == "real" and u.document not in earlier
    ]
    # at any other moment (a queue filing it after the step answered): a DPE located at street level or coarser, or
    # the document this step tested
    inside = {e.seq for e in exchanges}
    tested = {u.document for u in uploads(exchanges)}
    findings += [
        filed_for_real(
            u,
            "a DPE whose address is geocoded at "
            f"{(u.written or {}).get('ban_type') or 'an unknown'} level was filed, outside its step",
        )
        for u in all_uploads(trace)
        if u.mode == "real" and u.exchange.seq not in inside
        and (u.document in tested or (u.written is not None and u.written.get("ban_type") != "housenumber"))
    ]
    findings += answer_is(note, "filed", False, "the software reported the DPE as filed")
    return verdict(findings, "the incompletely geocoded DPE was kept back")


@check("housing.dpe_certification", verifies=["DPE-010"], scenario=SCENARIO)
@judged
def dpe_certification(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Each DPE carries the certification number of the diagnostician logged in."""
    diagnostician: dict[str, Any] = next(
        (p for p in trace.fixtures.get("professionals", []) if p.get("role") == "diagnostician"), {}
    )
    expected = diagnostician.get("certification")
    sent = readable_uploads(trace)
    findings = [
        quote(
            u.exchange,
            "the DPE does not carry the diagnostician's certification number",
            where="request.body/administratif/diagnostiqueur/numero_certification_diagnostiqueur",
            expected=expected,
            got=(u.written or {}).get("certification"),
        )
        for u in sent
        if (u.written or {}).get("certification") != expected
    ]
    return verdict(findings, f"{len(sent)} DPE(s) with certification {expected}")
