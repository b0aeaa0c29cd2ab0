"""Action patient.lookup: the national identity (INS) look-up and the identity-vigilance statuses.

The operator types the five strict traits; RefApp normalises them (PATIENTID-002/003), asks the
patient identity service with the practitioner's access token, and records the local patient in
``app.patients[ref]`` as ``{ref, traits, status, ins, oid, registered_traits}``:

* one match: the registered traits replace the typed ones, the INS and OID are kept, status
  ``qualified`` when an identity document was checked, ``recovered`` otherwise (PATIENTID-004/008);
* no match or several: no INS, status ``validated`` or ``provisional`` (PATIENTID-005/006/007);
* a service error or an INS answer out of format: the identity is left as it was (PATIENTID-009/011).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import httpx

from refapp import defects
from refapp.actions import action
from refapp.app import Application
from refapp.oidc import LoginRefused

TRAITS = ("birth_name", "first_names", "birth_date", "sex", "birth_place_code")
NAME_TRAITS = ("birth_name", "first_names")
INS_OIDS = ("1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11")
INS_PATTERN = re.compile(r"^[0-9]{6}[0-9AB][0-9]{8}$")
LIGATURES = {"Œ": "OE", "œ": "OE", "Æ": "AE", "æ": "AE", "ß": "SS"}
APOSTROPHES = {"’": "'", "‘": "'", "ʼ": "'", "‐": "-", "‑": "-", "–": "-"}
NOT_ALLOWED = re.compile(r"[^A-Z '\-]")

NO_NORMALISATION = defects.register("no-trait-normalisation",
                                    "sends the traits to the identity service as typed, without normalising them")
PICK_FIRST = defects.register("several-matches-qualified",
                              "takes a several-matches answer for a match and records the identity as qualified")


def normalise_name(text: str) -> str:
    """Upper case, no diacritics, only A-Z, space, hyphen and apostrophe, no stray spaces."""
    text = "".join(LIGATURES.get(c, c) for c in text)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = "".join(APOSTROPHES.get(c, c) for c in text.upper())
    text = NOT_ALLOWED.sub(" ", text)
    text = re.sub(r"\s*-\s*", "-", text)
    text = re.sub(r"\s*'\s*", "'", text)
    return re.sub(r"\s+", " ", text).strip(" -'")


def normalised(traits: dict[str, str]) -> dict[str, str]:
    """The five strict traits as sent to the service and compared with its answer."""
    if defects.active(NO_NORMALISATION):
        return {k: traits[k] for k in TRAITS}
    out = {k: traits[k].strip() for k in TRAITS}
    for name in NAME_TRAITS:
        out[name] = normalise_name(traits[name])
    out["sex"] = out["sex"].upper()
    out["birth_place_code"] = out["birth_place_code"].upper()
    return out


def local_record(app: Application, typed: dict[str, str], document_checked: bool) -> dict[str, Any]:
    """The local patient with these traits (same normalised traits), created when there is none."""
    key = normalised(typed)
    for existing in app.patients.values():
        for name in ("ins", "oid", "registered_traits"):
            existing.setdefault(name, None)
        if normalised(existing["traits"]) == key or normalised(existing.get("typed", existing["traits"])) == key:
            if document_checked and existing["status"] == "provisional":
                existing["status"] = "validated"
            return existing
    ref = f"L{len(app.patients) + 1}"
    while ref in app.patients:
        ref += "x"
    record: dict[str, Any] = {"ref": ref, "traits": dict(typed), "ins": None, "oid": None, "registered_traits": None,
                              "status": "validated" if document_checked else "provisional"}
    app.patients[ref] = record
    return record


def output(record: dict[str, Any], error: str | None = None) -> dict[str, Any]:
    """The identity as recorded, in the action's output form."""
    out: dict[str, Any] = {"status": record["status"], "traits": {k: record["traits"][k] for k in TRAITS},
                           "patient_ref": record["ref"]}
    if record.get("ins"):
        out["ins"], out["oid"] = record["ins"], record["oid"]
    if error:
        out["error"] = error[:500]
    return out

#: how long an operator waits for a look-up at the desk (PATIENTID-011 allows at most 30 s): a wave run's
#: patientid.service_failures waits this long once, for the answer the identity service holds
LOOKUP_TIMEOUT = 2.0


def ask_service(app: Application, traits: dict[str, str]) -> dict[str, Any]:
    """The service's answer (raises LookupFailed with a message for the operator)."""
    try:
        headers = app.auth_headers()
    except (LoginRefused, httpx.HTTPError) as exc:
        raise LookupFailed(f"no practitioner session for the look-up: {exc}") from exc
    try:
        with app.ctx.http() as http:
            r = http.post(f"{app.ctx.endpoints['insi'].rstrip('/')}/lookup", json=traits, headers=headers,
                          timeout=LOOKUP_TIMEOUT)
    except httpx.TimeoutException as exc:
        raise LookupFailed(f"identity service did not answer within {LOOKUP_TIMEOUT:g} s: try again") from exc
    except httpx.HTTPError as exc:
        raise LookupFailed(f"identity service unreachable: {type(exc).__name__}") from exc
    if r.status_code != 200:
        raise LookupFailed(f"identity service answered {r.status_code}: {problem_code(r)}")
    try:
        answer = r.json()
    except ValueError as exc:
        raise LookupFailed("identity service answer is not JSON") from exc
    if not isinstance(answer, dict):
        raise LookupFailed("identity service answer is not an object")
    return answer


def problem_code(r: httpx.Response) -> str:
    try:
        return str(r.json().get("code", "")) or r.reason_phrase
    except ValueError:
        return r.reason_phrase


class LookupFailed(Exception):
    """The look-up gave no usable answer: the identity stays as it was."""


def single_match(answer: dict[str, Any], sent: dict[str, str]) -> dict[str, Any] | None:
    """The identity of a single-match answer (validated), None for no match or several."""
    outcome = answer.get("outcome")
    if outcome == "multiple" and defects.active(PICK_FIRST):
        return {"ins": None, "oid": None, "traits": dict(sent)}  # the defect: "anything but no_match is a match"
    if outcome in ("no_match", "multiple"):
        return None
    if outcome != "match":
        raise LookupFailed(f"unexpected look-up outcome {outcome!r}")
    return valid_identity(answer.get("identity"))


def valid_identity(identity: Any) -> dict[str, Any]:
    """An identity whose INS and OID have the expected form (else LookupFailed: PATIENTID-009)."""
    if not isinstance(identity, dict):
        raise LookupFailed("the match carries no identity")
    ins, oid, traits = identity.get("ins"), identity.get("oid"), identity.get("traits")
    if not isinstance(ins, str) or not INS_PATTERN.match(ins):
        raise LookupFailed(f"the INS returned is not 15 characters of the expected form: {ins!r}")
    if oid not in INS_OIDS:
        raise LookupFailed(f"the INS OID returned is not an INS authority: {oid!r}")
    if not isinstance(traits, dict) or any(not isinstance(traits.get(k), str) for k in TRAITS):
        raise LookupFailed("the match does not carry the registered traits")
    return {"ins": ins, "oid": oid, "traits": {k: traits[k] for k in TRAITS}}


@action("patient.lookup")
def patient_lookup(app: Application, data: dict[str, Any]) -> dict[str, Any]:
    typed = {k: str(data[k]) for k in TRAITS}
    checked = bool(data.get("identity_document_checked", False))
    record = local_record(app, typed, checked)
    record["typed"] = typed
    sent = normalised(typed)
    try:
        identity = single_match(ask_service(app, sent), sent)
    except LookupFailed as exc:
        return output(record, str(exc))
    if identity is None:
        record.update(traits=dict(typed), status="validated" if checked else "provisional", ins=None, oid=None,
                      registered_traits=None)
        return output(record)
    record.update(traits=dict(identity["traits"]), registered_traits=dict(identity["traits"]), ins=identity["ins"],
                  oid=identity["oid"], status="qualified" if checked else "recovered")
    return output(record)
