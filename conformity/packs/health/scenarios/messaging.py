"""Scenarios: secure messaging (MESSAGING, PATIENTID-010, PATIENTID-012).

``messaging.send`` uses only actions every category pins (patient.lookup, directory.search,
message.send), so the same trace serves every wave and category. It looks up a qualified patient
and three that are not (no match, several matches, a match the operator did not confirm), finds a
recipient in the directory, then asks the software to send: a message with a document produced for
the qualified patient, one such message for each unqualified patient, a message to an address the
directory does not list (typed by the user), one to a listed and an unlisted address, and a message
while the messaging service is down.
"""

from __future__ import annotations

from typing import Any

from conformity.harness.scenario import Perform, ScenarioContext, SetFaults, scenario
from conformity.packs.health.scenarios import people
from conformity.packs.health.scenarios.documents import Input, content, generated_contents, lookup, patient


def unlisted_address(ctx: ScenarioContext) -> str:
    """A well-formed address the session's directory does not list: a listed one, mistyped."""
    listed = {a.casefold() for a in [p["mss_address"] for p in ctx.fixtures["practitioners"]]
              + [o["mss_address"] for o in ctx.fixtures["organisations"]]}
    local, _, domain = people.practitioner(ctx, 1)["mss_address"].partition("@")
    candidate = f"{local[:-1] or local}{ctx.rng.choice('qxz')}{local[-1:]}@{domain}"
    while candidate.casefold() in listed:
        candidate = "x" + candidate
    return candidate


def message(recipients: Any, *, attachment: Any = None, index: int = 0) -> Input:
    """message.send from the first practitioner's own address; recipients and attachment are factories."""

    def make(ctx: ScenarioContext) -> dict[str, Any]:
        text = content(ctx, index)
        data = {"sender": people.practitioner(ctx, 0)["mss_address"], "recipients": recipients(ctx),
                "subject": text["title"][:200], "body": text["body"]}
        if attachment is not None:
            data["attachment"] = attachment(ctx)
        return data

    return make


def to_colleague(ctx: ScenarioContext) -> list[str]:
    return [people.practitioner(ctx, 1)["mss_address"]]


def produced(step: str, kind: str, index: int) -> Any:
    """An attachment the software produces: a discharge letter for the patient of look-up ``step``."""
    return lambda ctx: {"patient": patient(ctx, step, kind), "document_type": discharge_letter_code(ctx),
                        **content(ctx, index)}


def discharge_letter_code(ctx: ScenarioContext) -> str:
    """The LOINC code of the hospital discharge letter in the wave's pinned DOCSHARE (11490-0 from DOCSHARE 2.2)."""
    return str(ctx.param("DOCSHARE-012", "type_code", "34106-7"))


SEND = scenario(
    "messaging.send",
    "Messages with patient documents, to unknown addresses, for unqualified identities, service down",
    Perform("patient.lookup", lookup(), name="lookup"),
    Perform("patient.lookup", lookup("absent"), name="lookup_no_match"),
    Perform("patient.lookup", lookup("multiple"), name="lookup_several"),
    Perform("patient.lookup", lookup("match", 1, confirmed=False), name="lookup_unconfirmed"),
    Perform("directory.search", lambda ctx: {"national_id": people.practitioner(ctx, 1)["national_id"]},
            name="find_recipient"),
    Perform("message.send", message(to_colleague, attachment=produced("lookup", "match", 0)), name="with_document"),
    Perform("message.send", message(to_colleague, attachment=produced("lookup_no_match", "absent", 1), index=1),
            name="no_match_document"),
    Perform("message.send", message(to_colleague, attachment=produced("lookup_several", "multiple", 2), index=2),
            name="several_document"),
    Perform("message.send", message(to_colleague, attachment=produced("lookup_unconfirmed", "match", 3), index=3),
            name="unconfirmed_document"),
    Perform("message.send", message(lambda ctx: [unlisted_address(ctx)], index=4), name="unknown_recipient"),
    Perform("message.send", message(lambda ctx: [*to_colleague(ctx), unlisted_address(ctx)], index=5),
            name="partly_unknown"),
    SetFaults({"mss": {"unavailable": 1}}),
    Perform("message.send", message(to_colleague, index=6), name="service_down"),
    SetFaults({"mss": None}),
    draws=(generated_contents,),
)
