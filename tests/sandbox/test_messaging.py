"""Secure messaging: directory-checked addresses, patient-bound attachments, mailboxes, faults, bounds."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformity.packs.health.ins import OID_DEMO_NIR, OID_NIR, OID_TEST_NIR
from sandbox.credentials import secret_hash
from sandbox.packs.health.messaging import MAX_ATTACHMENT_BYTES, MAX_MESSAGE_BYTES
from sandbox.server import RunningSandbox
from tests.sandbox.helpers import create_session, trace_payload

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def session(admin: httpx.Client) -> dict[str, Any]:
    return create_session(admin, 2, label="messaging")


@pytest.fixture(scope="module")
def mss(session: dict[str, Any], mint: Callable[..., str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=session["endpoints"]["mss"], timeout=30,
                      headers={"Authorization": f"Bearer {mint(session)}"}) as c:
        yield c


def addr(session: dict[str, Any], i: int) -> str:
    return session["fixtures"]["practitioners"][i]["mss_address"]


def org_addr(session: dict[str, Any], i: int) -> str:
    return session["fixtures"]["organisations"][i]["mss_address"]


def attachment(session: dict[str, Any], content: bytes = b"%PDF-1.4 report", **over: Any) -> dict[str, Any]:
    patient = session["fixtures"]["patients"][0]
    return {"filename": "report.pdf", "content_type": "application/pdf",
            "content": base64.b64encode(content).decode(), "patient": {"ins": patient["ins"], "oid": patient["oid"]}
            } | over


def message(session: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {"from": addr(session, 0), "to": [addr(session, 1)], "cc": [org_addr(session, 2)],
            "subject": "Compte rendu", "body": "Bonjour, ci-joint le compte rendu.",
            "attachments": [attachment(session)]} | over


def mailbox(client: httpx.Client, address: str) -> list[dict[str, Any]]:
    r = client.get(f"/mailboxes/{quote(address)}/messages")
    assert r.status_code == 200, r.text
    return r.json()


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    doc = r.json()
    assert doc["code"] == code and doc["status"] == status
    return doc


def test_message_is_delivered_to_to_and_cc(mss: httpx.Client, session: dict[str, Any]) -> None:
    body = message(session, subject="delivery")
    r = mss.post("/messages", json=body)
    assert r.status_code == 201, r.text
    mid = r.json()["message_id"]
    for address in (addr(session, 1), org_addr(session, 2)):
        got = [m for m in mailbox(mss, address) if m["message_id"] == mid]
        assert len(got) == 1
        m = got[0]
        assert (m["from"], m["to"], m["cc"], m["subject"], m["body"]) == (
            body["from"], body["to"], body["cc"], body["subject"], body["body"])
        assert m["attachments"] == body["attachments"]
        assert m["bytes"] == len(body["body"].encode()) + len(b"%PDF-1.4 report")
    assert all(m["message_id"] != mid for m in mailbox(mss, addr(session, 0)))  # not delivered to the sender


def test_mailbox_address_is_case_insensitive_and_must_be_in_the_directory(mss: httpx.Client,
                                                                          session: dict[str, Any]) -> None:
    r = mss.post("/messages", json=message(session, to=[addr(session, 3).upper()], cc=[], subject="case"))
    assert r.status_code == 201, r.text
    mid = r.json()["message_id"]
    assert any(m["message_id"] == mid for m in mailbox(mss, addr(session, 3)))
    problem(mss.get("/mailboxes/nobody%40355.mssante.test/messages"), 404, "mailbox-unknown")


def test_unknown_recipient_is_refused_before_delivery(mss: httpx.Client, session: dict[str, Any]) -> None:
    before = len(mailbox(mss, addr(session, 1)))
    stranger = "inconnu.0000@355.mssante.test"
    doc = problem(mss.post("/messages", json=message(session, to=[addr(session, 1), stranger], subject="stranger")),
                  422, "recipient-unknown")
    assert doc["recipients"] == [stranger] and stranger in doc["detail"]
    doc = problem(mss.post("/messages", json=message(session, cc=["other.1@611.mssante.fr"])), 422, "recipient-unknown")
    assert doc["recipients"] == ["other.1@611.mssante.fr"]
    assert len(mailbox(mss, addr(session, 1))) == before


def test_unknown_or_malformed_sender_and_malformed_recipient(mss: httpx.Client, session: dict[str, Any]) -> None:
    before = len(mailbox(mss, addr(session, 1)))
    doc = problem(mss.post("/messages", json=message(session, **{"from": "ghost.1234@355.mssante.test"})),
                  422, "sender-unknown")
    assert doc["sender"] == "ghost.1234@355.mssante.test"
    problem(mss.post("/messages", json=message(session, **{"from": "doctor@gmail.com"})), 422, "sender-invalid")
    doc = problem(mss.post("/messages", json=message(session, to=["not an address"])), 422, "recipient-invalid")
    assert doc["recipients"] == ["not an address"]
    problem(mss.post("/messages", json=message(session, to=[])), 422, "invalid-request")
    assert len(mailbox(mss, addr(session, 1))) == before


@pytest.mark.parametrize(("patient", "code", "extra"), [
    (None, "attachment-patient-missing", {"missing": ["ins", "oid"]}),
    ({}, "attachment-patient-missing", {"missing": ["ins", "oid"]}),
    ({"ins": "VALID"}, "attachment-patient-missing", {"missing": ["oid"]}),
    ({"oid": OID_TEST_NIR, "ins": "  "}, "attachment-patient-missing", {"missing": ["ins"]}),
    ({"ins": "BADKEY", "oid": OID_TEST_NIR}, "attachment-patient-invalid", {"field": "ins"}),
    ({"ins": "12345", "oid": OID_TEST_NIR}, "attachment-patient-invalid", {"field": "ins"}),
    ({"ins": "VALID", "oid": "1.2.250.1.213.1.4.2"}, "attachment-patient-invalid", {"field": "oid"}),
])
def test_attachment_must_carry_a_valid_patient_identity(mss: httpx.Client, session: dict[str, Any],
                                                        patient: dict[str, str] | None, code: str,
                                                        extra: dict[str, Any]) -> None:
    ins = session["fixtures"]["patients"][0]["ins"]
    if patient is not None:
        patient = {k: {"VALID": ins, "BADKEY": ins[:13] + f"{(int(ins[13:]) + 1) % 100:02d}"}.get(v, v)
                   for k, v in patient.items()}
    att = attachment(session)
    if patient is None:
        del att["patient"]
    else:
        att["patient"] = patient
    before = len(mailbox(mss, addr(session, 1)))
    doc = problem(mss.post("/messages", json=message(session, attachments=[attachment(session), att])), 422, code)
    assert doc["attachment"] == 1
    assert {k: doc[k] for k in extra} == extra
    assert len(mailbox(mss, addr(session, 1))) == before


@pytest.mark.parametrize("oid", [OID_NIR, OID_TEST_NIR, OID_DEMO_NIR])
def test_every_ins_oid_is_accepted(mss: httpx.Client, session: dict[str, Any], oid: str) -> None:
    att = attachment(session)
    att["patient"]["oid"] = oid
    assert mss.post("/messages", json=message(session, attachments=[att])).status_code == 201


def test_message_without_attachment_is_accepted(mss: httpx.Client, session: dict[str, Any]) -> None:
    assert mss.post("/messages", json=message(session, attachments=[])).status_code == 201


@pytest.mark.parametrize(("over", "status", "code"), [
    ({"content": "not base64 !!"}, 400, "attachment-content-invalid"),
    ({"content": ""}, 422, "attachment-empty"),
    ({"filename": "../../etc/passwd"}, 422, "attachment-filename-invalid"),
    ({"filename": "a\x00b.pdf"}, 422, "attachment-filename-invalid"),
    ({"document_type": "11502-2"}, 422, "attachment-document-type-invalid"),
    ({"document_type": "CR-BIO"}, 422, "invalid-request"),
    ({"content_type": "pdf"}, 422, "invalid-request"),
    ({"patient": {"ins": "1", "oid": "2", "name": "X"}}, 422, "invalid-request"),
])
def test_attachment_rules(mss: httpx.Client, session: dict[str, Any], over: dict[str, Any], status: int,
                          code: str) -> None:
    problem(mss.post("/messages", json=message(session, attachments=[attachment(session) | over])), status, code)


def test_cda_attachment_may_declare_its_loinc_type(mss: httpx.Client, session: dict[str, Any]) -> None:
    cda = attachment(session, b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>", filename="cr.xml",
                     content_type="application/xml; charset=utf-8", document_type="11502-2")
    assert mss.post("/messages", json=message(session, attachments=[cda])).status_code == 201


def test_size_bounds(mss: httpx.Client, session: dict[str, Any]) -> None:
    big = attachment(session, b"x" * (MAX_ATTACHMENT_BYTES + 1))
    doc = problem(mss.post("/messages", json=message(session, attachments=[big])), 413, "attachment-too-large")
    assert doc["limit"] == MAX_ATTACHMENT_BYTES
    near = attachment(session, b"y" * MAX_ATTACHMENT_BYTES)
    body = "z" * (MAX_MESSAGE_BYTES - MAX_ATTACHMENT_BYTES + 1)
    problem(mss.post("/messages", json=message(session, body=body, attachments=[near])), 413, "message-too-large")
    problem(mss.post("/messages", json=message(session, attachments=[attachment(session)] * 11)), 422,
            "invalid-request")
    problem(mss.post("/messages", content=b"{" + b" " * (3 * 1024 * 1024) + b"}",
                     headers={"content-type": "application/json"}), 413, "body-too-large")


def test_request_shape_errors(mss: httpx.Client, session: dict[str, Any]) -> None:
    problem(mss.post("/messages", json=message(session) | {"bcc": []}), 422, "invalid-request")
    problem(mss.post("/messages", content=b'{"from": ', headers={"content-type": "application/json"}), 400,
            "json-malformed")
    problem(mss.post("/messages", content=b"hello", headers={"content-type": "text/plain"}), 415,
            "unsupported-media-type")
    problem(mss.get("/messages"), 405, "method-not-allowed")


def test_resubmitting_a_message_id_never_duplicates(mss: httpx.Client, session: dict[str, Any]) -> None:
    mid = f"<{secrets.token_hex(8)}@software.example>"
    body = message(session, message_id=mid, subject="idempotent")
    r = mss.post("/messages", json=body)
    assert (r.status_code, r.json()) == (201, {"message_id": mid})
    r = mss.post("/messages", json=body)
    assert (r.status_code, r.json()) == (200, {"message_id": mid, "duplicate": True})
    assert [m["message_id"] for m in mailbox(mss, addr(session, 1))].count(mid) == 1
    doc = problem(mss.post("/messages", json=body | {"subject": "changed"}), 409, "message-id-conflict")
    assert doc["message_id"] == mid
    problem(mss.post("/messages", json=body | {"message_id": "has space"}), 422, "invalid-request")


def test_unavailable_fault(admin: httpx.Client, new_session: Callable[..., dict[str, Any]], mint: Callable[..., str],
                           client: httpx.Client) -> None:
    s = new_session(seed=7)
    admin.put(f"/admin/sessions/{s['session_id']}/faults", json={"mss": {"unavailable": 1}})
    auth = {"Authorization": f"Bearer {mint(s)}"}
    url = s["endpoints"]["mss"] + "/messages"
    r = client.post(url, json=message(s), headers=auth)
    problem(r, 503, "service-unavailable")
    assert r.headers["retry-after"] == "1"
    assert client.get(s["endpoints"]["mss"] + f"/mailboxes/{quote(addr(s, 1))}/messages", headers=auth).json() == []
    assert client.post(url, json=message(s), headers=auth).status_code == 201


def test_outcomes_are_recorded_in_the_trace(admin: httpx.Client, new_session: Callable[..., dict[str, Any]],
                                            mint: Callable[..., str], client: httpx.Client) -> None:
    s = new_session(seed=8)
    sender = s["fixtures"]["practitioners"][0]
    auth = {"Authorization": f"Bearer {mint(s, sender['national_id'])}"}
    url = s["endpoints"]["mss"] + "/messages"
    client.post(url, json=message(s), headers=auth)
    client.post(url, json=message(s, to=["x.1@355.mssante.test"]), headers=auth)
    client.post(url, json=message(s, **{"from": addr(s, 1)}), headers=auth)
    exchanges = trace_payload(admin.get(f"/admin/sessions/{s['session_id']}/trace"))["exchanges"]
    assert [x["outcome"] for x in exchanges] == ["message-accepted", "recipient-unknown", "message-accepted"]
    assert exchanges[0]["outcome_details"]["sender_matches_token"] is True
    assert exchanges[1]["outcome_details"]["recipients"] == ["x.1@355.mssante.test"]
    assert exchanges[2]["outcome_details"]["sender_matches_token"] is False


def test_production_rules_without_directory(admin: httpx.Client, client: httpx.Client,
                                            session: dict[str, Any]) -> None:
    r = admin.post("/admin/installations", json={
        "vendor_id": "acme", "software": {"id": "acme-ehr", "name": "Acme EHR", "version": "2.1"},
        "site": {"id": "750000001", "size": "M"}, "wave": "2026-W1", "category": "HOSPITAL"})
    assert r.status_code == 201, r.text
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    outside = message(session, **{"from": "dr.house@chu-x.mssante.fr"}, to=["lab@lab-y.mssante.fr"], cc=[])
    assert client.post("/prod/mss/messages", json=outside, headers=auth).status_code == 201
    problem(client.post("/prod/mss/messages", json=outside | {"to": ["lab@gmail.com"]}, headers=auth), 422,
            "recipient-invalid")
    problem(client.post("/prod/mss/messages", json=outside | {"from": "dr@mssante.fr.evil.com"}, headers=auth), 422,
            "sender-invalid")
    no_patient = attachment(session)
    del no_patient["patient"]
    problem(client.post("/prod/mss/messages", json=outside | {"attachments": [no_patient]}, headers=auth), 422,
            "attachment-patient-missing")
    problem(client.post("/prod/mss/messages", json=outside), 401, "installation-token-missing")


@pytest.mark.parametrize("empty", [{"body": ""}, {"body": " \n\t\u200b"}, {"body": "", "subject": "Sans objet"}],
                         ids=["no-body", "invisible-body", "subject-only"])
def test_production_a_message_without_data_is_not_received(admin: httpx.Client, client: httpx.Client,
                                                          session: dict[str, Any], empty: dict[str, str]) -> None:
    """QA (payments): a message of nothing (no body, no attachment) was received with a data-received event of 0
    bytes; three of them met a pharmacy's proof of use. A message carries a body or an attachment: else 422
    ``message-empty``, no event; an attachment alone is data."""
    r = admin.post("/admin/installations", json={
        "vendor_id": "acme", "software": {"id": "acme-ehr", "name": "Acme EHR", "version": "2.1"},
        "site": {"id": "750000001", "size": "M"}, "wave": "2026-W1", "category": "HOSPITAL"})
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    bare = message(session, **{"from": "dr.house@chu-x.mssante.fr"}, to=["lab@lab-y.mssante.fr"], cc=[],
                   attachments=[]) | empty
    before = len(admin.get("/admin/events", params={"limit": 10000}).json()["events"])
    found = problem(client.post("/prod/mss/messages", json=bare, headers=auth), 422, "message-empty")
    assert "neither a body nor an attachment" in found["detail"]
    assert len(admin.get("/admin/events", params={"limit": 10000}).json()["events"]) == before
    with_attachment = bare | {"attachments": [attachment(session)]}
    assert client.post("/prod/mss/messages", json=with_attachment, headers=auth).status_code == 201


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=12)


def _assert_no_crash(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"] == PROBLEM
        assert {"type", "title", "status", "detail", "code"} <= set(r.json())


@settings(derandomize=True, max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=JSON)
def test_arbitrary_json_never_breaks_the_service(mss: httpx.Client, body: Any) -> None:
    _assert_no_crash(mss.post("/messages", json=body))


@settings(derandomize=True, max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_message_shaped_bodies_never_break_the_service(mss: httpx.Client, session: dict[str, Any],
                                                       data: st.DataObject) -> None:
    body = message(session)
    for key in data.draw(st.sets(st.sampled_from(sorted(body) + ["message_id"]), max_size=3)):
        body[key] = data.draw(JSON)
    att = attachment(session)
    for key in data.draw(st.sets(st.sampled_from(sorted(att) + ["document_type"]), max_size=2)):
        att[key] = data.draw(JSON)
    body["attachments"] = [att]
    _assert_no_crash(mss.post("/messages", json=body))


def test_trace_stays_exportable_after_arbitrary_bodies(admin: httpx.Client, session: dict[str, Any],
                                                       mss: httpx.Client) -> None:
    for raw in (b'{"n": 123456789012345678901234567890}', b'{"x": NaN}', b'["\\ud800"]', b"[" * 5000 + b"]" * 5000):
        _assert_no_crash(mss.post("/messages", content=raw, headers={"content-type": "application/json"}))
    r = admin.get(f"/admin/sessions/{session['session_id']}/trace")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("wave", "category"), [("2026-W1", "RADIOLOGY"), ("1999-W9", "HOSPITAL")])
def test_production_refuses_messages_the_label_does_not_cover(admin: httpx.Client, client: httpx.Client,
                                                              sandbox_server: RunningSandbox, session: dict[str, Any],
                                                              wave: str, category: str) -> None:
    """QA: an installation of a category or wave the catalog does not have had its messages accepted and emitted as
    events. Registration refuses them now (test_dmp); one registered before the catalog changed is written to the
    store here."""
    r = admin.post("/admin/installations", json={
        "vendor_id": "acme", "software": {"id": "acme-ehr", "name": "Acme EHR", "version": "2.1"},
        "site": {"id": "750000001", "size": "M"}, "wave": "2026-W1", "category": "HOSPITAL"})
    assert r.status_code == 201, r.text
    store = sandbox_server.server.config.app.state.store
    inst = store.installation_by_token_hash(secret_hash(r.json()["token"]))
    store.put_installation(inst | {"wave": wave, "category": category}, secret_hash(r.json()["token"]))
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    outside = message(session, **{"from": "dr.house@chu-x.mssante.fr"}, to=["lab@lab-y.mssante.fr"], cc=[])
    before = len(admin.get("/admin/events", params={"limit": 10000}).json()["events"])
    found = problem(client.post("/prod/mss/messages", json=outside, headers=auth), 403, "kind-not-covered")
    assert found["kind"] == "message"
    assert len(admin.get("/admin/events", params={"limit": 10000}).json()["events"]) == before
