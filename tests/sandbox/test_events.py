"""Data-received events from the production role: the JSON-lines file, the admin feed, the schemas."""

from __future__ import annotations

import base64
import json
import re
import secrets
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from conformity.paths import schema_path
from conformity.signing import canonical_json, sha256_hex
from sandbox.credentials import secret_hash
from sandbox.events import DATA_SCHEMA, EVENT_TYPE
from sandbox.server import RunningSandbox
from tests.conftest import official as official_file

#: CloudEvents 1.0: every attribute name (extensions included) is lowercase ASCII alphanumeric, ≤ 20 characters
ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,20}$")
CDA_TYPE = "11502-2"


@pytest.fixture(scope="module")
def data_schema() -> dict[str, Any]:
    schema = json.loads(schema_path("data-received").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@pytest.fixture(scope="module")
def cloudevents_schema(official_schemas: Path) -> dict[str, Any]:
    path = official_schemas / "cloudevents" / "cloudevents.json"
    official_file("the official CloudEvents JSON Schema", path if path.is_file() else None)  # fails when CI=true
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def install(admin: httpx.Client) -> Callable[..., dict[str, Any]]:
    """Register an installation: ``install(vendor_id="acme")`` → the admin API's answer with its token."""

    def make(**over: Any) -> dict[str, Any]:
        body = {"vendor_id": "acme", "software": {"id": "acme-ehr", "name": "Acme EHR", "version": "3.2",
                                                  "registration_id": "REG-42"},
                "site": {"id": "750000001", "size": "L", "name": "CHU Exemple"}, "wave": "2026-W1",
                "category": "HOSPITAL"} | over
        r = admin.post("/admin/installations", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    return make


def cursor(admin: httpx.Client) -> int:
    """The current end of the event feed."""
    after = 0
    while True:
        page = admin.get("/admin/events", params={"after": after, "limit": 10000}).json()
        if not page["events"]:
            return page["next"]
        after = page["next"]


def events_since(admin: httpx.Client, after: int) -> list[dict[str, Any]]:
    return admin.get("/admin/events", params={"after": after, "limit": 10000}).json()["events"]


def message(**over: Any) -> dict[str, Any]:
    pdf = base64.b64encode(b"%PDF-1.7 lettre de liaison").decode()
    return {"from": "dr.martin@chu-exemple.mssante.fr", "to": ["secretariat@labo.mssante.fr"],
            "cc": ["dr.durand@cabinet.mssante.test"], "subject": "Lettre de liaison", "body": "Bonjour,\n",
            "attachments": [{"filename": "lettre.pdf", "content_type": "application/pdf", "content": pdf,
                             "patient": {"ins": "199027505648460", "oid": "1.2.250.1.213.1.4.10"}}]} | over


def post(client: httpx.Client, token: str, body: dict[str, Any]) -> httpx.Response:
    return client.post("/prod/mss/messages", json=body, headers={"Authorization": f"Bearer {token}"})


def check_event(event: dict[str, Any], data_schema: dict[str, Any]) -> None:
    """What the official CloudEvents schema does not check, and our data schema."""
    assert event["specversion"] == "1.0"
    assert not ("data" in event and "data_base64" in event)
    for name in event:
        if name not in ("data", "data_base64"):
            assert ATTRIBUTE_NAME.fullmatch(name), f"attribute name {name!r} is not lowercase alphanumeric ≤ 20"
    assert event["type"] == EVENT_TYPE and event["dataschema"] == DATA_SCHEMA
    assert event["datacontenttype"] == "application/json"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", event["time"])
    jsonschema.Draft202012Validator(data_schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
                                    ).validate(event["data"])


def test_data_schema_is_the_one_events_name(data_schema: dict[str, Any]) -> None:
    assert data_schema["$id"] == DATA_SCHEMA
    assert data_schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert data_schema["additionalProperties"] is False
    validator = jsonschema.Draft202012Validator(data_schema)
    good = {"installation_id": "ins_x", "vendor_id": "v", "software": {"id": "s", "name": "S", "version": "1",
                                                                       "registration_id": ""},
            "site": {"id": "1", "size": "M", "name": ""}, "wave": "2024-W1", "category": "GP", "kind": "document",
            "document_type": "11502-2", "bytes": 0, "sha256": "a" * 64, "reference": "r"}
    assert not list(validator.iter_errors(good))
    assert not list(validator.iter_errors(good | {"kind": "message", "document_type": None}))
    for bad in ({"kind": "Fax"}, {"document_type": "CR BIO"}, {"bytes": -1}, {"bytes": 1.5}, {"sha256": "A" * 64},
                {"sha256": "a" * 63}, {"wave": "W2"}, {"extra": 1}, {"software": {"id": "s"}},
                {"site": {"id": "1", "size": "M", "name": "", "x": 1}}):
        assert list(validator.iter_errors(good | bad)), bad
    for key in good:
        assert list(validator.iter_errors({k: v for k, v in good.items() if k != key})), key


def test_accepted_messages_emit_valid_events(sandbox_server: RunningSandbox, admin: httpx.Client,
                                             client: httpx.Client, install: Callable[..., dict[str, Any]],
                                             data_schema: dict[str, Any]) -> None:
    start = cursor(admin)
    inst = install()
    other = install(vendor_id="globex", site={"id": "130000002", "size": "S"}, category="GP")
    sent = [post(client, inst["token"], message()), post(client, other["token"], message(subject="two")),
            post(client, inst["token"], message(message_id="<m3@acme>", subject="three"))]
    assert [r.status_code for r in sent] == [201, 201, 201]
    events = [e for e in events_since(admin, start) if e["subject"] in (inst["id"], other["id"])]
    assert [e["data"]["reference"] for e in events] == [r.json()["message_id"] for r in sent]
    assert sent[2].json()["message_id"] == "<m3@acme>"
    for event in events:
        check_event(event, data_schema)
        assert event["source"] == sandbox_server.config.installation_event_source + ":mss"
        assert event["data"]["kind"] == "message" and event["data"]["document_type"] is None
    assert len({e["id"] for e in events}) == 3
    first = events[0]["data"]
    assert first == {"installation_id": inst["id"], "vendor_id": "acme", "software": inst["software"],
                     "site": inst["site"], "wave": "2026-W1", "category": "HOSPITAL", "kind": "message",
                     "document_type": None, "bytes": len(b"%PDF-1.7 lettre de liaison") + len(b"Bonjour,\n"),
                     "sha256": first["sha256"], "reference": sent[0].json()["message_id"]}
    canonical = {"message_id": first["reference"]} | {k: v for k, v in message().items()}
    assert first["sha256"] == sha256_hex(canonical_json(canonical))
    assert events[1]["data"]["vendor_id"] == "globex" and events[1]["data"]["site"]["size"] == "S"


def test_cda_attachment_gives_the_document_type(admin: httpx.Client, client: httpx.Client,
                                                install: Callable[..., dict[str, Any]],
                                                data_schema: dict[str, Any]) -> None:
    start = cursor(admin)
    inst = install()
    body = message()
    cda = body["attachments"][0] | {"filename": "cr-bio.xml", "content_type": "application/hl7-cda+xml",
                                    "document_type": CDA_TYPE,
                                    "content": base64.b64encode(b"<ClinicalDocument/>").decode()}
    assert post(client, inst["token"], body | {"attachments": [body["attachments"][0], cda]}).status_code == 201
    [event] = [e for e in events_since(admin, start) if e["subject"] == inst["id"]]
    check_event(event, data_schema)
    assert event["data"]["document_type"] == CDA_TYPE
    assert event["data"]["bytes"] == len(b"%PDF-1.7 lettre de liaison") + len(b"<ClinicalDocument/>") + len(
        b"Bonjour,\n")


def test_events_validate_against_the_official_cloudevents_schema(admin: httpx.Client, client: httpx.Client,
                                                                 install: Callable[..., dict[str, Any]],
                                                                 cloudevents_schema: dict[str, Any],
                                                                 data_schema: dict[str, Any]) -> None:
    start = cursor(admin)
    inst = install()
    body = message()
    cda = body["attachments"][0] | {"content_type": "text/xml", "document_type": "34106-7"}
    assert post(client, inst["token"], body).status_code == 201
    assert post(client, inst["token"], body | {"attachments": [cda]}).status_code == 201
    events = events_since(admin, start)
    assert len(events) == 2
    validator = jsonschema.Draft7Validator(cloudevents_schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    for event in events:
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(event)]
        assert not errors, errors
        check_event(event, data_schema)  # what the official schema leaves out
    # the official schema alone would let these through: the extra checks are what catches them
    for bad in ({"specversion": "0.3"}, {"data_base64": "e30="}, {"partnerID": "x"}, {"averyveryverylongextension": 1}):
        assert not list(validator.iter_errors(events[0] | bad))
        with pytest.raises(AssertionError):
            check_event(events[0] | bad, data_schema)


def test_event_file_is_complete_json_lines(sandbox_server: RunningSandbox, admin: httpx.Client,
                                           client: httpx.Client, install: Callable[..., dict[str, Any]]) -> None:
    inst = install()
    for i in range(3):
        assert post(client, inst["token"], message(subject=f"line {i}")).status_code == 201
    raw = sandbox_server.config.events_path.read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.decode("utf-8").split("\n")[:-1]
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(e, dict) and e["specversion"] == "1.0" for e in parsed)
    assert sum(e["subject"] == inst["id"] for e in parsed) == 3
    assert parsed == events_since(admin, 0)[:len(parsed)]


def test_event_feed_pagination(admin: httpx.Client, client: httpx.Client,
                               install: Callable[..., dict[str, Any]]) -> None:
    start = cursor(admin)
    inst = install()
    for i in range(5):
        assert post(client, inst["token"], message(subject=f"page {i}")).status_code == 201
    seen, after, pages = [], start, 0
    while True:
        page = admin.get("/admin/events", params={"after": after, "limit": 2}).json()
        assert len(page["events"]) <= 2
        if not page["events"]:
            assert page["next"] == after
            break
        assert page["next"] == after + len(page["events"])
        seen += page["events"]
        after, pages = page["next"], pages + 1
    assert seen == events_since(admin, start)
    assert [e["data"]["reference"] for e in seen if e["subject"] == inst["id"]] == [
        e["data"]["reference"] for e in events_since(admin, start) if e["subject"] == inst["id"]]
    assert sum(e["subject"] == inst["id"] for e in seen) == 5 and pages >= 3
    r = admin.get("/admin/events", params={"after": -1})
    assert r.status_code == 422 and r.json()["code"] == "invalid-request"


def test_session_traffic_emits_no_event(admin: httpx.Client, client: httpx.Client, sandbox_server: RunningSandbox,
                                        new_session: Callable[..., dict[str, Any]]) -> None:
    start = cursor(admin)
    s = new_session(seed=21)
    token = secrets.token_urlsafe()
    sandbox_server.server.config.app.state.store.put_token(token, "access", s["session_id"], {}, ttl=600)
    fx = s["fixtures"]
    body = message() | {"from": fx["practitioners"][0]["mss_address"], "to": [fx["practitioners"][1]["mss_address"]],
                        "cc": []}
    r = client.post(s["endpoints"]["mss"] + "/messages", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    assert all(e["data"]["reference"] != r.json()["message_id"] for e in events_since(admin, start))


def test_unknown_or_revoked_installation_token_emits_nothing(admin: httpx.Client, client: httpx.Client,
                                                             sandbox_server: RunningSandbox,
                                                             install: Callable[..., dict[str, Any]]) -> None:
    start = cursor(admin)
    r = post(client, "not-an-installation-token", message())
    assert (r.status_code, r.json()["code"]) == (401, "installation-token-invalid")
    assert "invalid_token" in r.headers["www-authenticate"]
    inst = install()
    store = sandbox_server.server.config.app.state.store
    record = {k: v for k, v in inst.items() if k not in ("token", "endpoints")}
    store.put_installation(record | {"state": "revoked"}, secret_hash(inst["token"]))
    r = post(client, inst["token"], message())
    assert (r.status_code, r.json()["code"]) == (401, "installation-token-revoked")
    r = client.post("/prod/mss/messages", json=message())
    assert (r.status_code, r.json()["code"]) == (401, "installation-token-missing")
    session_token = admin.post("/admin/sessions", json={"seed": 22}).json()["credentials"]["session_token"]
    assert post(client, session_token, message()).status_code == 401
    assert events_since(admin, start) == [] and cursor(admin) == start


def test_refused_messages_emit_nothing(admin: httpx.Client, client: httpx.Client,
                                       install: Callable[..., dict[str, Any]]) -> None:
    start = cursor(admin)
    inst = install()
    no_patient = message()
    del no_patient["attachments"][0]["patient"]
    for body, code in ((no_patient, "attachment-patient-missing"), (message(to=["x@gmail.com"]), "recipient-invalid"),
                       (message(bcc=["x@y.mssante.fr"]), "invalid-request")):
        r = post(client, inst["token"], body)
        assert (r.status_code, r.json()["code"]) == (422, code)
    assert all(e["subject"] != inst["id"] for e in events_since(admin, start))


def test_resubmission_emits_one_event(admin: httpx.Client, client: httpx.Client,
                                      install: Callable[..., dict[str, Any]]) -> None:
    start = cursor(admin)
    inst, other = install(), install(vendor_id="globex")
    body = message(message_id="<once@acme.example>")
    r1, r2 = post(client, inst["token"], body), post(client, inst["token"], body)
    assert (r1.status_code, r2.status_code) == (201, 200)
    assert r2.json() == {"message_id": "<once@acme.example>", "duplicate": True}
    r3 = post(client, inst["token"], body | {"subject": "other content"})
    assert (r3.status_code, r3.json()["code"]) == (409, "message-id-conflict")
    # another installation's message ids are its own
    assert post(client, other["token"], body).status_code == 201
    events = events_since(admin, start)
    assert [e["subject"] for e in events if e["data"]["reference"] == "<once@acme.example>"] == [inst["id"],
                                                                                                 other["id"]]


def test_concurrent_resubmissions_emit_one_event(sandbox_server: RunningSandbox, admin: httpx.Client,
                                                 install: Callable[..., dict[str, Any]]) -> None:
    start = cursor(admin)
    inst = install()
    body = message(message_id="<race@acme.example>")

    def one(_: int) -> int:
        with httpx.Client(base_url=sandbox_server.base_url, timeout=60) as c:
            return post(c, inst["token"], body).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(one, range(8)))
    assert statuses == [200] * 7 + [201]
    assert [e["subject"] for e in events_since(admin, start)] == [inst["id"]]


#: each: the same message re-spelled (message → message), sent again under a fresh message id
RESPELLED_MESSAGES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "no message id": lambda m: {k: v for k, v in m.items() if k != "message_id"},
    "addresses in upper case": lambda m: m | {"from": m["from"].upper(), "to": [a.upper() for a in m["to"]]},
    "recipients moved between to and cc": lambda m: m | {"to": m["cc"], "cc": m["to"]},
    "white space in subject and body": lambda m: m | {"subject": " Lettre  de\tliaison éè ", "body": "Bonjour,\r\n\r\n"},
    "NFD accents": lambda m: m | {"subject": unicodedata.normalize("NFD", m["subject"])},
    "attachment renamed, base64 in lines": lambda m: m | {"attachments": [m["attachments"][0] | {
        "filename": "copie.pdf", "content": "\n".join(m["attachments"][0]["content"][i:i + 8]
                                                       for i in range(0, len(m["attachments"][0]["content"]), 8))}]},
}


@pytest.mark.parametrize("respelling", RESPELLED_MESSAGES)
def test_the_same_message_under_another_id_emits_no_event(admin: httpx.Client, client: httpx.Client,
                                                          install: Callable[..., dict[str, Any]],
                                                          respelling: str) -> None:
    """QA: one message sent again under fresh message ids (or re-spelled) emitted an event each time: four copies met a
    proof of use of 3 events."""
    start = cursor(admin)
    inst, other = install(), install(vendor_id="globex")
    first = message(subject="Lettre de liaison éè", message_id="<first@acme.example>")
    assert post(client, inst["token"], first).status_code == 201
    again = RESPELLED_MESSAGES[respelling](first | {"message_id": "<again@acme.example>"})
    r = post(client, inst["token"], again)
    assert (r.status_code, r.json()) == (200, {"message_id": "<first@acme.example>", "duplicate": True})
    assert post(client, inst["token"], first | {"body": "Une autre lettre.", "message_id": "<other@acme.example>"}).status_code == 201
    assert post(client, other["token"], again).status_code == 201  # another installation's message is its own
    assert [e["subject"] for e in events_since(admin, start)] == [inst["id"], inst["id"], other["id"]]
