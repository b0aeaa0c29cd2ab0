"""Mutations of transport security and of what the software hands back: SECURITY-001/002/008/014/015, MESSAGING-006."""

from __future__ import annotations

import copy
from urllib.parse import urlsplit

from conformity.checks.oidc import REDACTED
from conformity.defects.edit import TraceEdit
from conformity.packs.health.defects.common import mutation

TLS, NOMINAL = "security.tls_endpoints", "pracauth.login_nominal"
MESSAGING_SELF_SIGNED, MESSAGING_LEGACY = "messaging.tls_self_signed", "messaging.tls_legacy"
W2 = ("2027-W2",)


def accepted(listener: str, breaks: list[str], waves: tuple[str, ...] = ("2026-W1", "2027-W2")) -> None:
    """Register a mutation: the software completes the handshake with the bad server ``listener`` and sends its
    request there (the trace records it with that listener's Host), reporting the connection as made."""

    def change(t: TraceEdit) -> float:
        note = t.step(listener)
        trusted = t.in_step("trusted")[-1]
        host = urlsplit(str(note.data["input"]["url"])).netloc
        raw = copy.deepcopy(trusted.raw) | {"seq": note.seq - 0.5}
        raw["request"]["headers"]["host"] = host
        seq = t.insert(raw)
        note.raw["data"]["output"] = {"connected": True, "tls_version": "TLSv1.2"}
        return seq

    change.__doc__ = f"The software connects to the {listener.replace('_', ' ')} server and sends its request."
    mutation(f"connects-to-{listener.replace('_', '-')}", scenario=TLS, breaks=breaks, waves=waves,
             where="request.headers.host")(change)


for name in ("self_signed", "untrusted_root", "expired", "not_yet_valid", "wrong_host", "incomplete_chain"):
    accepted(name, ["SECURITY-002"])
for name in ("tls1_0", "tls1_1"):
    accepted(name, ["SECURITY-001"])
for name in ("weak_key", "weak_signature"):
    accepted(name, ["SECURITY-014"], W2)
for name in ("cipher_null", "cipher_static_rsa", "cipher_cbc_sha1"):
    accepted(name, ["SECURITY-015"], W2)


def message_sent(scenario: str) -> None:
    """Register a mutation: the message reaches the messaging service whose endpoint is on a bad listener."""

    def change(t: TraceEdit) -> float:
        note = t.step("send")
        endpoint = next(n for n in t.view.notes("driver.initialize")).data["endpoints"]["mss"]
        raw = {"kind": "http", "seq": note.seq - 0.5, "time": note.raw["time"], "service": "mss",
               "request": {"method": "POST", "path": urlsplit(endpoint).path + "/messages", "query": {},
                           "headers": {"host": urlsplit(endpoint).netloc, "content-type": "application/json"},
                           "auth": None, "body": {"json": {"from": note.data["input"]["sender"],
                                                           "to": note.data["input"]["recipients"]}}},
               "response": {"status": 201, "headers": {}, "body": {"json": {"message_id": "<m@mss>"}}},
               "outcome": "message-accepted", "duration_ms": 3.0}
        seq = t.insert(raw)
        note.raw["data"]["output"] = {"status": "sent", "message_id": "<m@mss>"}
        return seq

    change.__doc__ = f"The message of scenario {scenario} is sent over the misconfigured connection."
    mutation(f"message-sent-{scenario.split('_', 1)[1].replace('_', '-')}", scenario=scenario,
             breaks=["MESSAGING-006"], where="request.headers.host")(change)


message_sent(MESSAGING_SELF_SIGNED)
message_sent(MESSAGING_LEGACY)


# ---------------------------------------------------------------------------------------------
# SECURITY-008: secrets and patient data in what the software hands back


def _software_output(t: TraceEdit, stderr: str = "", log: str = "") -> float:
    """Add what the software wrote (stderr, a log slice) as the harness records it, after the last step."""
    last = max(e["seq"] for e in t.doc["exchanges"])
    data = {k: v for k, v in (("stderr", stderr), ("logs", {"/var/log/app.log": log} if log else {})) if v}
    return t.insert({"kind": "note", "seq": last + 1, "time": t.doc["exchanges"][-1]["time"], "note": "software.output",
                     "data": data})


@mutation("access-token-in-log", scenario=NOMINAL, breaks=["SECURITY-008"], where="software.output log file", waves=W2)
def access_token_in_log(t: TraceEdit) -> float:
    """The software logs the Authorization header of its requests (the sandbox masks the token it issued)."""
    token = t.exchanges("idp", "/token")[0].response_json["access_token"]
    assert REDACTED.fullmatch(token)
    return _software_output(t, log=f"DEBUG GET /userinfo headers={{'authorization': 'Bearer {token}'}}\n")


@mutation("token-of-another-scenario-in-log", scenario="docshare.documents", breaks=["SECURITY-008"],
          where="software.output log file", waves=W2)
def token_of_another_scenario_in_log(t: TraceEdit) -> float:
    """The software's log buffer is flushed during a later session: the slice of this scenario holds the Authorization
    header of a request of the nominal login's session (the sandbox masks every token it issued, whichever session)."""
    token = t.other(NOMINAL).exchanges("idp", path="/token")[0].response_json["access_token"]
    assert REDACTED.fullmatch(token)
    return _software_output(t, log=f"DEBUG GET /userinfo headers={{'authorization': 'Bearer {token}'}}\n")


@mutation("ins-of-another-scenario-in-error-output", scenario="docshare.documents", breaks=["SECURITY-008"],
          where="software.output stderr", waves=W2)
def ins_of_another_scenario_in_error_output(t: TraceEdit) -> float:
    """A warning about a patient of the look-ups' session reaches the error output during a later session."""
    own = {p.get("ins") for p in t.fixtures["patients"]}
    patient = next(p for p in t.other("patientid.lookups").fixtures["patients"] if p.get("ins") and p["ins"] not in own)
    return _software_output(t, stderr=f"WARNING identity {patient['ins']} status changed\n")


@mutation("client-secret-in-answer", scenario=NOMINAL, breaks=["SECURITY-008"], where="driver.perform answer",
          waves=W2)
def client_secret_in_answer(t: TraceEdit) -> float:
    """The login's error message repeats the client configuration, client secret included."""
    note = t.step("login")
    secret = f"[redacted sha256:{t.doc['session']['client_secret_sha256']}]"
    note.raw["data"]["output"]["detail"] = f"client {t.doc['session']['client_id']} / {secret}"
    return note.seq


@mutation("ins-in-error-output", scenario="patientid.lookups", breaks=["SECURITY-008"], where="software.output stderr",
          waves=W2)
def ins_in_error_output(t: TraceEdit) -> float:
    """A warning on the error output prints the patient record, INS included."""
    patient = next(p for p in t.fixtures["patients"] if p.get("ins"))
    return _software_output(t, stderr=f"WARNING identity {patient['ins']} status changed\n")


@mutation("document-content-in-log", scenario="docshare.documents", breaks=["SECURITY-008"],
          where="software.output log file", waves=W2)
def document_content_in_log(t: TraceEdit) -> float:
    """The software logs the text of each document it renders at DEBUG level (document content in its logs)."""
    body = max((n.data["input"]["body"] for n in t.view.performed("document.submit")), key=len)
    return _software_output(t, log=f"DEBUG rendering document text: {body}\n")
