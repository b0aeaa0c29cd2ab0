"""Mutations of the patient identity look-ups (``patientid.lookups``): PATIENTID, ETHICS-003."""

from __future__ import annotations

from conformity.checks.trace import Exchange
from conformity.defects.edit import TraceEdit, request_json
from conformity.packs.health.defects.common import mutation

LOOKUPS = "patientid.lookups"


def _lookup(t: TraceEdit, step: str) -> Exchange:
    return t.in_step(step, "insi", path="/lookup")[-1]


@mutation("lookup-sends-address", scenario=LOOKUPS, breaks=["PATIENTID-001", "ETHICS-003"], where="request.body.json")
def lookup_sends_address(t: TraceEdit) -> int:
    """The look-up also sends the patient's address."""
    e = _lookup(t, "match_document")
    request_json(e)["address"] = "12 rue des Lilas, 75011 Paris"
    return e.seq


@mutation("lookup-patient-in-header", scenario=LOOKUPS, breaks=["PATIENTID-001", "ETHICS-003"], where="request.headers")
def lookup_patient_in_header(t: TraceEdit) -> int:
    """The look-up names the patient again in a tracing header (and so in every proxy's access logs)."""
    e = _lookup(t, "match_typed")
    body = request_json(e)
    e.raw["request"]["headers"]["x-patient"] = f"{body['birth_name']} {body['first_names']} {body['birth_date']}"
    return e.seq


@mutation("lookup-traits-in-query", scenario=LOOKUPS, breaks=["PATIENTID-001", "ETHICS-003", "SECURITY-006"],
          where="request.query")
def lookup_traits_in_query(t: TraceEdit) -> int:
    """The look-up repeats the traits in its query string (and so in every proxy's logs)."""
    e = _lookup(t, "match_typed")
    e.raw["request"]["query"] = {k: [v] for k, v in request_json(e).items()}
    return e.seq


@mutation("qualified-without-document", scenario=LOOKUPS, breaks=["PATIENTID-004"], where="output.status")
def qualified_without_document(t: TraceEdit) -> int:
    """A single match is recorded qualified although no identity document was checked."""
    t.output("match_typed")["status"] = "qualified"
    return t.step("match_typed").seq


@mutation("qualified-without-lookup", scenario=LOOKUPS, breaks=["PATIENTID-001", "ETHICS-003", "PATIENTID-005"],
          where="output.status")
def qualified_without_lookup(t: TraceEdit) -> int:
    """The identity is recorded qualified from the local file, the look-up never sent."""
    sent = {e.seq for e in _all(t, "match_document")}
    t.drop(lambda e: e["seq"] not in sent)
    return t.step("match_document").seq


def _all(t: TraceEdit, step: str) -> list[Exchange]:
    return t.in_step(step, "insi", path="/lookup")


@mutation("no-match-given-local-ins", scenario=LOOKUPS, breaks=["PATIENTID-006"], where="output.ins")
def no_match_given_local_ins(t: TraceEdit) -> int:
    """After no match, the INS of the local file is recorded (the status stays validated)."""
    out = t.output("no_match_document")
    patient = next(p for p in t.fixtures["patients"] if p["ref"] == out["patient_ref"])
    out |= {"ins": patient["ins"], "oid": patient["oid"]}
    return t.step("no_match_document").seq


@mutation("no-match-validated-without-document", scenario=LOOKUPS, breaks=["PATIENTID-005"], where="output.status")
def no_match_validated_without_document(t: TraceEdit) -> int:
    """After no match, an identity whose document nobody checked is recorded validated."""
    t.output("no_match")["status"] = "validated"
    return t.step("no_match").seq


@mutation("typed-traits-recorded", scenario=LOOKUPS, breaks=["PATIENTID-008"], where="output.traits.birth_name")
def typed_traits_recorded(t: TraceEdit) -> int:
    """After a single match, the typed traits are kept instead of the registered ones."""
    note = t.step("match_typed")
    note.raw["data"]["output"]["traits"] = {k: v for k, v in note.data["input"].items()
                                            if k != "identity_document_checked"}
    return note.seq


@mutation("short-ins-kept", scenario=LOOKUPS, breaks=["PATIENTID-009"], where="output.ins")
def short_ins_kept(t: TraceEdit) -> int:
    """A 13-character INS answered by the service is recorded as is."""
    note = t.step("short_ins")
    answer = _lookup(t, "short_ins").response_json["identity"]
    note.raw["data"]["output"] = {"status": "qualified", "traits": answer["traits"], "ins": answer["ins"],
                                  "oid": answer["oid"], "patient_ref": note.data["output"]["patient_ref"]}
    return note.seq


@mutation("oid-not-recorded", scenario=LOOKUPS, breaks=["PATIENTID-009"], where="output.oid")
def oid_not_recorded(t: TraceEdit) -> int:
    """The INS is recorded without the OID of its authority."""
    t.output("match_document").pop("oid")
    return t.step("match_document").seq


@mutation("qualified-after-503", scenario=LOOKUPS, breaks=["PATIENTID-011"], where="output.status")
def qualified_after_503(t: TraceEdit) -> int:
    """The service answered 503; the software records the identity qualified anyway (from a stale cache)."""
    out = t.output("service_unavailable")
    out["status"] = "qualified"
    out.pop("error")
    return t.step("service_unavailable").seq


@mutation("503-not-reported", scenario=LOOKUPS, breaks=["PATIENTID-011"], where="output.error")
def error_not_reported(t: TraceEdit) -> int:
    """The service answered 503; the software tells the operator nothing."""
    t.output("service_unavailable").pop("error")
    return t.step("service_unavailable").seq


@mutation("hyphen-spaced", scenario=LOOKUPS, breaks=["PATIENTID-003"], where="request.body.json.birth_name")
def hyphen_spaced(t: TraceEdit) -> int:
    """Names are upper-cased and stripped of diacritics, but a hyphen typed with spaces around keeps them."""
    e = _lookup(t, "match_document")
    traits = request_json(e)
    traits["birth_name"] = traits["birth_name"] + " - " + traits["birth_name"]
    t.step("match_document").raw["data"]["input"]["birth_name"] = traits["birth_name"]
    return e.seq


@mutation("lower-case-sent", scenario=LOOKUPS, breaks=["PATIENTID-002"], where="request.body.json.first_names")
def lower_case_sent(t: TraceEdit) -> int:
    """First names are sent as typed in lower case (hyphens and apostrophes handled right)."""
    e = _lookup(t, "match_document")
    request_json(e)["first_names"] = request_json(e)["first_names"].lower()
    return e.seq


@mutation("several-matches-ins-kept", scenario=LOOKUPS, breaks=["PATIENTID-007"], where="output.ins")
def several_matches_ins_kept(t: TraceEdit) -> int:
    """After several matches, an INS the site held for one of the patients is recorded (the status stays validated)."""
    out = t.output("several_document")
    patient = next(p for p in t.fixtures["patients"] if p["scenario"] == "multiple")
    out |= {"ins": patient["ins"], "oid": patient["oid"]}
    return t.step("several_document").seq


# ---------------------------------------------------------------------------------------------
# the identity service failing (patientid.service_failures)

FAILURES = "patientid.service_failures"


@mutation("qualified-after-reset", scenario=FAILURES, breaks=["PATIENTID-011"], where="output.status")
def qualified_after_reset(t: TraceEdit) -> int:
    """The connection was reset; the software records the identity qualified from its last cached answer."""
    out = t.output("connection_reset")
    out["status"] = "qualified"
    out.pop("error", None)
    return t.step("connection_reset").seq


@mutation("dropped-reply-not-reported", scenario=FAILURES, breaks=["PATIENTID-011"],
          where="output.error")
def dropped_reply_not_reported(t: TraceEdit) -> int:
    """The service never answered; the software tells the operator nothing."""
    t.output("reply_dropped").pop("error", None)
    return t.step("reply_dropped").seq


@mutation("waits-past-the-limit", scenario=FAILURES, breaks=["PATIENTID-011"], where="request time")
def waits_past_the_limit(t: TraceEdit) -> int:
    """The software waits 31 s for an answer that does not come (more than the 30 s allowed)."""
    e = t.in_step("no_answer", "insi", path="/lookup")[-1]
    e.raw["outcome_details"]["waited_s"] = 31.0
    return e.seq
