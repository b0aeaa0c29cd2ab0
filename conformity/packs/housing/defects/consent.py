"""Trace mutations: consent (CONSENT)."""

from __future__ import annotations

from conformity.defects.edit import TraceEdit
from conformity.packs.housing.defects.common import copied, mutation, refused
from conformity.packs.housing.scenarios.consent import CONSENTS

SCENARIO = CONSENTS.id
CATEGORY = "ADVISER"


@mutation(
    "access-without-consent",
    scenario=SCENARIO,
    breaks=["CONSENT-001"],
    category=CATEGORY,
    where="request.headers.consent-id",
)
def access_without_consent(t: TraceEdit) -> float:
    """The software reads a home's DPE without saying which consent it relies on."""
    e = t.in_step("read_dpe", "dataspace")[-1]
    e.raw["request"]["headers"].pop("consent-id", None)
    return e.seq


@mutation(
    "reads-under-another-homes-consent",
    scenario=SCENARIO,
    breaks=["CONSENT-001"],
    category=CATEGORY,
    where="request.headers.consent-id",
)
def reads_under_another_homes_consent(t: TraceEdit) -> float:
    """The software reads another household's home under the consent the first household gave for its own (the data
    space refuses it: consent-other-home)."""
    note = t.step("read_dpe")
    read = t.in_step("read_dpe", "dataspace")[-1]
    mine, other = (str(t.step(n).data["input"]["household"]) for n in ("read_dpe", "grant_transfer"))
    raw = copied(read, note.seq - 0.5)
    raw["request"]["path"] = raw["request"]["path"].replace(f"/homes/{mine}/", f"/homes/{other}/")
    refused(raw, 403, "consent-other-home")
    return t.insert(raw)


@mutation(
    "asks-another-households-consent",
    scenario=SCENARIO,
    breaks=["CONSENT-001"],
    category=CATEGORY,
    where="request.body.json.household",
)
def asks_another_households_consent(t: TraceEdit) -> float:
    """The user names a home; the software asks another household for consent and reads that other home under it
    (each access carries the consent granted for the home it reads: only the step's home shows the mistake)."""
    mine, other = (str(t.step(n).data["input"]["household"]) for n in ("grant", "grant_transfer"))
    asked = t.in_step("grant", "dataspace", path="/consents")[-1]
    asked.raw["request"]["body"]["json"]["household"] = other
    asked.raw["response"]["body"]["json"]["household"] = other
    for e in t.in_step("read_dpe", "dataspace"):
        e.raw["request"]["path"] = e.raw["request"]["path"].replace(f"/homes/{mine}/", f"/homes/{other}/")
    return asked.seq


@mutation(
    "asks-wider-consent", scenario=SCENARIO, breaks=["CONSENT-002"], category=CATEGORY, where="request.body.json.scope"
)
def asks_wider_consent(t: TraceEdit) -> float:
    """The user asks a consent for the DPE and consumption, without the transfer; the software asks the household for
    every kind and the transfer (the sandbox, playing the household, grants whatever is asked)."""
    asked = t.in_step("grant", "dataspace", path="/consents")[-1]
    asked.raw["request"]["body"]["json"].update(scope=["dpe", "quote", "works", "consumption"],
                                                 transfer_consumption=True)
    return asked.seq


@mutation("asks-out-of-scope", scenario=SCENARIO, breaks=["CONSENT-002"], category=CATEGORY, where="request.query.kind")
def asks_out_of_scope(t: TraceEdit) -> float:
    """The software asks for the home's quotes, which the consent does not cover."""
    note = t.step("read_out_of_scope")
    read = t.in_step("read_dpe", "dataspace")[-1]
    raw = copied(read, note.seq - 0.5)
    raw["request"]["query"]["kind"] = ["quote"]
    refused(raw, 403, "consent-scope")
    return t.insert(raw)


@mutation(
    "reads-after-revocation",
    scenario=SCENARIO,
    breaks=["CONSENT-003"],
    category=CATEGORY,
    where="request.headers.consent-id",
)
def reads_after_revocation(t: TraceEdit) -> float:
    """The software reads again under the consent the household revoked."""
    note = t.step("after_household_revoked")
    revoked = t.in_step("household_revoked", "dataspace")[-1]
    raw = copied(revoked, note.seq - 0.5)
    return t.insert(raw)


@mutation(
    "reads-revoked-home-under-borrowed-consent",
    scenario=SCENARIO,
    breaks=["CONSENT-001", "CONSENT-003"],
    category=CATEGORY,
    where="request.headers.consent-id",
)
def reads_revoked_home_under_borrowed_consent(t: TraceEdit) -> float:
    """Once a household revoked its consent, the software reads its home again under the consent another household
    gave (itself revoked): the data space refuses it (consent-other-home)."""
    note = t.step("after_household_revoked")
    revoked = t.in_step("household_revoked", "dataspace")[-1]
    borrowed = t.in_step("read_dpe", "dataspace")[-1].request_headers()["consent-id"]
    raw = copied(revoked, note.seq - 0.5)
    raw["request"]["headers"]["consent-id"] = borrowed
    refused(raw, 403, "consent-other-home")
    return t.insert(raw)


@mutation(
    "transfers-without-permission", scenario=SCENARIO, breaks=["CONSENT-004"], category=CATEGORY, where="request.path"
)
def transfers_without_permission(t: TraceEdit) -> float:
    """The software sends consumption data although the consent does not allow it."""
    return transfer_refused_by_the_data_space(t, t.step("transfer_refused").seq - 0.5)


@mutation(
    "transfer-queued-without-permission",
    scenario=SCENARIO,
    breaks=["CONSENT-004"],
    category=CATEGORY,
    where="request.path",
)
def transfer_queued_without_permission(t: TraceEdit) -> float:
    """The software answers that the transfer is not allowed, then its outbox sends the consumption data anyway, after
    the step answered (the data space refuses it: 403 transfer-not-consented)."""
    return transfer_refused_by_the_data_space(t, t.step("transfer_refused").seq + 0.5)


def transfer_refused_by_the_data_space(t: TraceEdit, seq: float) -> float:
    """A transfer of the home of step transfer_refused, under its consent (given without the transfer), at ``seq``."""
    note = t.step("transfer_refused")
    sent = t.in_step("transfer_allowed", "dataspace")[-1]
    raw = copied(sent, seq)
    raw["request"]["path"] = raw["request"]["path"].replace(
        str(t.step("transfer_allowed").data["input"]["household"]), str(note.data["input"]["household"])
    )
    # under the consent of that very home (the one its household gave without the transfer), as the software holds it
    raw["request"]["headers"]["consent-id"] = t.in_step("read_dpe", "dataspace")[-1].request_headers()["consent-id"]
    refused(raw, 403, "transfer-not-consented")
    return t.insert(raw)


@mutation(
    "consent-without-expiry",
    scenario=SCENARIO,
    breaks=["CONSENT-005"],
    category=CATEGORY,
    where="request.body.json.expires",
)
def consent_without_expiry(t: TraceEdit) -> float:
    """The software asks for a consent that never expires."""
    e = t.in_step("grant", "dataspace", path="/consents")[-1]
    e.raw["request"]["body"]["json"]["expires"] = "2099-12-31"
    return e.seq


@mutation("revokes-locally-only", scenario=SCENARIO, breaks=["CONSENT-006"], category=CATEGORY, where="")
def revokes_locally_only(t: TraceEdit) -> None:
    """The software forgets a revoked consent without telling the data space."""
    revoked = {e.seq for e in t.in_step("revoke", "dataspace")}
    t.drop(lambda raw: raw.get("seq") not in revoked)
