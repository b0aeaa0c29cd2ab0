"""Trace mutations: housing identifiers (HOUSINGID)."""

from __future__ import annotations

import copy
from typing import Any

from conformity.defects.edit import TraceEdit
from conformity.packs.housing.defects.common import W4, copied, mutation, refused
from conformity.packs.housing.scenarios.consent import BAD_NUMBERS, CONSENTS
from conformity.packs.housing.scenarios.dpe import FILE
from conformity.packs.housing.scenarios.identifiers import IDENTIFY
from conformity.packs.housing.scenarios.works import QUOTE_AND_WORKS

SCENARIO = IDENTIFY.id
CATEGORY = "DIAGNOSTICIAN"


@mutation("invalid-rnb-looked-up", scenario=SCENARIO, breaks=["HOUSINGID-002"], category=CATEGORY, where="request.path")
def invalid_rnb_looked_up(t: TraceEdit) -> float:
    """The software sends an RNB id with an I to the registry, and reports what it answered."""
    note = t.step("invalid_id")
    seq = invalid_rnb_sent(t, note.seq - 0.5)
    note.raw["data"]["output"] = {"status": "error", "error": "registry answered 422"}
    return seq


@mutation(
    "invalid-rnb-looked-up-later", scenario=SCENARIO, breaks=["HOUSINGID-002"], category=CATEGORY, where="request.path"
)
def invalid_rnb_looked_up_later(t: TraceEdit) -> float:
    """The software reports the RNB id with an I as invalid, then its background prefetch of the buildings typed looks
    it up at the registry anyway, after the step answered."""
    return invalid_rnb_sent(t, t.step("invalid_id").seq + 0.5)


def invalid_rnb_sent(t: TraceEdit, seq: float) -> float:
    """A look-up of step invalid_id's RNB id at the registry at ``seq``, refused (422 rnb-id-invalid)."""
    note = t.step("invalid_id")
    typed = str(note.data["input"]["rnb_id"])
    found = t.in_step("dashed_id", "buildings")[-1]
    return t.insert(typed_rnb_refused(copied(found, seq), typed, "rnb-id-invalid"))


def typed_rnb_refused(raw: dict[str, Any], typed: str, code: str) -> dict[str, Any]:
    """Recorded look-up ``raw``, changed in place: of the RNB id ``typed``, refused by the registry (422 ``code``)."""
    raw["request"]["path"] = raw["request"]["path"].rsplit("/", 1)[0] + "/" + typed
    return refused(raw, 422, code)


@mutation("geocoder-key-not-kept", scenario=SCENARIO, breaks=["HOUSINGID-003"], category=CATEGORY, where="output")
def geocoder_key_not_kept(t: TraceEdit) -> float:
    """The software keeps an address key of its own making instead of the geocoder's."""
    out = t.output("complete")
    out["cle_interop"] = out["cle_interop"].rsplit("_", 1)[0] + "_99999"
    return t.step("complete").seq


@mutation(
    "stale-geocoding-key", scenario=SCENARIO, breaks=["HOUSINGID-003"], category=CATEGORY,
    where="request.query.cle_interop",
)
def stale_geocoding_key(t: TraceEdit) -> float:
    """The software geocodes the low-score address, then looks the building up by the key it kept from the address
    before (its last geocoding, cached), and presents that address's building as this one's."""
    kept = t.in_step("complete", "buildings", path="/buildings")[-1]
    found = [e for e in t.in_step("low_score", "buildings", path="/buildings") if e.param("cle_interop") is not None]
    assert found, "the reference looks the low-score address's building up"
    for e in found:
        e.raw["request"]["query"]["cle_interop"] = list(kept.raw["request"]["query"]["cle_interop"])
        e.raw["response"] = copy.deepcopy(kept.raw["response"])
    out = t.output("low_score")
    if "rnb_id" in out:
        out["rnb_id"] = t.output("complete")["rnb_id"]
    return found[0].seq


@mutation(
    "no-min-score", scenario=SCENARIO, breaks=["HOUSINGID-004"], category=CATEGORY, where="request.query.min_score"
)
def no_min_score(t: TraceEdit) -> float:
    """The software looks buildings up by address without asking for a minimum geocoding score."""
    found = [e for e in t.exchanges("buildings", "/buildings") if e.param("cle_interop") is not None]
    for e in found:
        e.raw["request"]["query"].pop("min_score", None)
    return found[0].seq


def without_min_score(t: TraceEdit, step: str) -> float:
    found = [e for e in t.in_step(step, "buildings", path="/buildings") if e.param("cle_interop") is not None]
    assert found, f"the reference looks the building up by address in step {step!r}"
    for e in found:
        e.raw["request"]["query"].pop("min_score", None)
    return found[0].seq


@mutation(
    "dpe-lookup-without-min-score",
    scenario=FILE.id,
    breaks=["HOUSINGID-004"],
    category=CATEGORY,
    where="request.query.min_score",
)
def dpe_lookup_without_min_score(t: TraceEdit) -> float:
    """Filing a DPE, the software looks the building up by address without a minimum geocoding score (only its
    building search asks for one)."""
    return without_min_score(t, "complete")


@mutation(
    "quote-lookup-without-min-score",
    scenario=QUOTE_AND_WORKS.id,
    breaks=["HOUSINGID-004"],
    category="CONTRACTOR",
    where="request.query.min_score",
)
def quote_lookup_without_min_score(t: TraceEdit) -> float:
    """Writing a quote, the software looks the home's building up by address without a minimum geocoding score."""
    return without_min_score(t, "quote")


@mutation("incomplete-looked-up", scenario=SCENARIO, breaks=["HOUSINGID-005"], category=CATEGORY, where="request.query")
def incomplete_looked_up(t: TraceEdit) -> float:
    """The software looks a building up for an address geocoded only at street level."""
    note = t.step("incomplete")
    key = t.in_step("incomplete", "geocoder")[-1].response_json["features"][0]["properties"]["id"]
    found = t.in_step("no_building", "buildings")[-1]
    seq = t.copy_before(found, note)
    copied = next(e for e in t.exchanges("buildings") if e.seq == seq)
    copied.raw["request"]["query"]["cle_interop"] = [key]  # by the street key the geocoder gave for this address
    note.raw["data"]["output"] = {"status": "no_result"}
    return seq


@mutation(
    "incomplete-looked-up-later", scenario=SCENARIO, breaks=["HOUSINGID-005"], category=CATEGORY, where="request.query"
)
def incomplete_looked_up_later(t: TraceEdit) -> float:
    """The software reports the street-level address incomplete, then its background prefetch looks a building up by
    the geocoder's street key anyway, after the step answered."""
    note = t.step("incomplete")
    key = t.in_step("incomplete", "geocoder")[-1].response_json["features"][0]["properties"]["id"]
    raw = copied(t.in_step("no_building", "buildings")[-1], note.seq + 0.5)
    raw["request"]["query"]["cle_interop"] = [key]
    raw["response"] = {"status": 200, "headers": {}, "body": {"json": {"status": "no_result", "buildings": []}}}
    return t.insert(raw)


@mutation(
    "low-score-not-warned",
    scenario=SCENARIO,
    breaks=["HOUSINGID-006"],
    category=CATEGORY,
    where="output.warnings",
)
def low_score_not_warned(t: TraceEdit) -> float:
    """The software uses a low-score address without warning the user."""
    t.output("low_score").pop("warnings", None)
    return t.step("low_score").seq


@mutation(
    "low-score-warning-as-text",
    scenario=SCENARIO,
    breaks=["HOUSINGID-006"],
    category=CATEGORY,
    where="output.warnings",
)
def low_score_warning_as_text(t: TraceEdit) -> float:
    """The software folds the low-score warning into a sentence of its own, not the ``low_score`` warning the user
    interface contract names."""
    t.output("low_score")["warnings"] = ["Adresse approximative, à vérifier"]
    return t.step("low_score").seq


@mutation("no-result-as-building", scenario=SCENARIO, breaks=["HOUSINGID-007"], category=CATEGORY, where="output")
def no_result_as_building(t: TraceEdit) -> float:
    """The software presents the building of a neighbouring address when the registry found none."""
    out = t.output("no_building")
    out.update(status="ok", rnb_id=t.output("complete")["rnb_id"])
    return t.step("no_building").seq


@mutation("retry-not-waiting", scenario=SCENARIO, breaks=["HOUSINGID-008"], category=CATEGORY, where="time")
def retry_not_waiting(t: TraceEdit) -> float:
    """The software retries a refused look-up at once."""
    calls = t.in_step("retry", "buildings")
    first, again = next(e for e in calls if e.status == 503), calls[-1]
    again.raw["time"] = first.raw["time"]
    return again.seq


@mutation(
    "parcel-building-not-kept", scenario=SCENARIO, breaks=["HOUSINGID-009"], category=CATEGORY, waves=W4, where="output"
)
def parcel_building_not_kept(t: TraceEdit) -> float:
    """The software keeps the first building of its local cache instead of the one found on the parcel."""
    t.output("parcel")["rnb_id"] = t.output("complete")["rnb_id"]
    return t.step("parcel").seq


def fiscal_number_sent(t: TraceEdit, step: str, later: bool = False) -> float:
    """The consent asked for on the malformed number of ``step``, as that step asked it (the data space refuses it), in
    the step (``later``: just after the step answered)."""
    note = t.step(step)
    asked = t.in_step("grant", "dataspace", path="/consents")[-1]
    raw = copied(asked, note.seq + 0.5 if later else note.seq - 0.5)
    given = note.data["input"]
    raw["request"]["body"]["json"].update({k: given[k] for k in ("household", "scope", "transfer_consumption")})
    refused(raw, 422, "invalid-request")
    return t.insert(raw)


@mutation(
    "malformed-fiscal-number-sent", scenario=CONSENTS.id, breaks=["HOUSINGID-010"], category="ADVISER", where="request"
)
def malformed_fiscal_number_sent(t: TraceEdit) -> float:
    """The software asks for consent on a malformed fiscal housing number (the data space refuses it)."""
    return fiscal_number_sent(t, "bad_number")


@mutation(
    "malformed-fiscal-number-sent-later",
    scenario=CONSENTS.id,
    breaks=["HOUSINGID-010"],
    category="ADVISER",
    where="request",
)
def malformed_fiscal_number_sent_later(t: TraceEdit) -> float:
    """The software answers that the lower-case fiscal number is refused, then its outbox asks for the consent on it
    anyway, after the step answered (the data space refuses it)."""
    return fiscal_number_sent(t, list(BAD_NUMBERS)[-1], later=True)


@mutation(
    "fiscal-number-of-13-characters-sent",
    scenario=CONSENTS.id,
    breaks=["HOUSINGID-010"],
    category="ADVISER",
    where="request",
)
def fiscal_number_of_13_characters_sent(t: TraceEdit) -> float:
    """The software's format check does not anchor its end: a 13-character fiscal number is sent."""
    return fiscal_number_sent(t, "bad_number_long")


@mutation(
    "fiscal-number-of-any-letter-sent",
    scenario=CONSENTS.id,
    breaks=["HOUSINGID-010"],
    category="CONTRACTOR",
    where="request",
)
def fiscal_number_of_any_letter_sent(t: TraceEdit) -> float:
    """The software's format check takes any letter in the second place (not only A or B): a number with a C is
    sent."""
    return fiscal_number_sent(t, "bad_number_letter")


@mutation("rnb-sent-as-typed", scenario=SCENARIO, breaks=["HOUSINGID-001"], category=CATEGORY, where="request.path")
def rnb_sent_as_typed(t: TraceEdit) -> float:
    """The software sends the RNB id as the user typed it (the registry refuses it) and keeps it so."""
    note = t.step("dashed_id")
    typed = str(note.data["input"]["rnb_id"])
    e = t.in_step("dashed_id", "buildings")[-1]
    typed_rnb_refused(e.raw, typed, "rnb-id-not-normalised")
    note.raw["data"]["output"] = {"status": "error", "rnb_id": typed, "error": "registry answered 422"}
    return e.seq


@mutation(
    "rnb-sent-as-typed-later", scenario=SCENARIO, breaks=["HOUSINGID-001"], category=CATEGORY, where="request.path"
)
def rnb_sent_as_typed_later(t: TraceEdit) -> float:
    """The software looks the normalised RNB id up and keeps it, then its background prefetch of the ids typed sends
    the id as the user wrote it (dashes, lower case), after the step answered (the registry refuses it)."""
    note = t.step("dashed_id")
    typed = str(note.data["input"]["rnb_id"])
    raw = copied(t.in_step("dashed_id", "buildings")[-1], note.seq + 0.5)
    return t.insert(typed_rnb_refused(raw, typed, "rnb-id-not-normalised"))
