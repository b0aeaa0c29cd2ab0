"""The shared record over real HTTP: validation, idempotence, lifecycle, faults, production events."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import hashlib
import json
import re
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
import pytest
from lxml import etree

from conformity.xmlsafe import parse_xml
from sandbox.config import SandboxConfig
from sandbox.credentials import secret_hash
from sandbox.packs.health import cda, samples
from sandbox.packs.health import dmp as dmp_service
from sandbox.server import RunningSandbox, start_in_thread
from tests.sandbox.cda_cases import HEADER_CASES, METADATA_CASES, V3, Mutation
from tests.sandbox.dmp_client import Dmp, token_for
from tests.sandbox.helpers import create_session, trace_payload

Submit = Callable[..., httpx.Response]


@pytest.fixture(scope="module")
def http(sandbox_server: RunningSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_server.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def session(admin: httpx.Client) -> dict[str, Any]:
    return create_session(admin, 5150, label="dmp")


@pytest.fixture(scope="module")
def dmp(sandbox_server: RunningSandbox, http: httpx.Client, session: dict[str, Any]) -> Dmp:
    return Dmp(http, session, token_for(sandbox_server, session))


@pytest.fixture
def fresh(sandbox_server: RunningSandbox, http: httpx.Client, new_session: Callable[..., Any]) -> Dmp:
    """A practitioner on a new session (for faults and traces that must start empty)."""
    session = new_session(seed=31)
    return Dmp(http, session, token_for(sandbox_server, session))


def outcomes(admin: httpx.Client, sid: str) -> list[str]:
    trace = trace_payload(admin.get(f"/admin/sessions/{sid}/trace"))
    return [e["outcome"] for e in trace["exchanges"] if e["kind"] == "http"]


def resign(body: dict[str, Any], document: bytes, **metadata: Any) -> dict[str, Any]:
    """A submission carrying other document bytes, with hash and size following them."""
    out = copy.deepcopy(body)
    out["document"] = base64.b64encode(document).decode()
    out["metadata"] |= {"hash": hashlib.sha1(document).hexdigest(), "size": len(document)} | metadata
    return out


def mutate(body: dict[str, Any], change: Mutation) -> dict[str, Any]:
    root = parse_xml(base64.b64decode(body["document"]))
    change(root)
    return resign(body, etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code, body
    return body


# ------------------------------------------------------------------------------------------ acceptance

@pytest.mark.parametrize(("type_code", "level"), [("34106-7", 1), ("11502-2", 3), ("60591-5", 1), ("18748-4", 1),
                                                  ("60593-1", 3)])
def test_accepted_documents(dmp: Dmp, type_code: str, level: int) -> None:
    body = dmp.sample(type_code=type_code, level=level)
    r = dmp.submit(body)
    assert r.status_code == 201, r.text
    entry = r.json()
    uid = body["metadata"]["unique_id"]
    assert entry["unique_id"] == uid and entry["status"] == "approved" and entry["level"] == level
    assert entry["metadata"] == body["metadata"] and entry["hidden"] is False
    assert r.headers["location"].endswith(f"/dmp/documents/{quote(uid, safe='')}")
    got = dmp.get(uid)
    assert got.status_code == 200 and got.json()["document"] == body["document"]
    assert uid in [e["unique_id"] for e in dmp.listing(body["metadata"]["patient_id"])]


@pytest.mark.parametrize(("type_code", "level"), [("34106-7", 1), ("11502-2", 3)])
def test_accepted_documents_are_valid_against_the_official_xsd(dmp: Dmp, official_schemas: Path, type_code: str,
                                                                level: int) -> None:
    body = dmp.sample(type_code=type_code, level=level)
    assert dmp.submit(body).status_code == 201
    stored = base64.b64decode(dmp.get(body["metadata"]["unique_id"]).json()["document"])
    schema = cda.load_schema(official_schemas / "hl7-cda-r2" / "infrastructure" / "cda" / "CDA.xsd")
    assert schema.validate(parse_xml(stored)), schema.error_log


@pytest.fixture(scope="module")
def xsd_dmp(tmp_path_factory: pytest.TempPathFactory, official_schemas: Path) -> Iterator[Dmp]:
    """A second sandbox given the official CDA R2 schema (``--schema cda=PATH``: the pack's schema ``cda``)."""
    xsd = official_schemas / "hl7-cda-r2" / "infrastructure" / "cda" / "CDA.xsd"
    config = SandboxConfig(data_dir=tmp_path_factory.mktemp("sandbox-xsd"), admin_token="xsd-admin",
                           schemas={"cda": xsd})
    with start_in_thread(config) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        r = client.post("/admin/sessions", json={"seed": 8}, headers={"Authorization": "Bearer xsd-admin"})
        session = r.json()
        yield Dmp(client, session, token_for(server, session))


def test_strict_xsd_refuses_schema_invalid_documents(xsd_dmp: Dmp) -> None:
    assert xsd_dmp.submit(xsd_dmp.sample(type_code="11502-2")).status_code == 201

    def unknown_element(root: etree._Element) -> None:
        root.find(V3 + "title").addnext(etree.Element(V3 + "colour"))

    body = mutate(xsd_dmp.sample(), unknown_element)
    found = problem(xsd_dmp.submit(body), 422, "document-invalid")["findings"]
    assert [f["code"] for f in found] == ["cda-xsd-invalid"]
    assert "colour" in found[0]["message"]


def test_without_xsd_the_same_document_passes_the_rules(dmp: Dmp) -> None:
    body = mutate(dmp.sample(), lambda root: root.find(V3 + "title").addnext(etree.Element(V3 + "colour")))
    assert dmp.submit(body).status_code == 201


# ------------------------------------------------------------------------------------------ refusals

@pytest.mark.parametrize(("name", "change", "code"), HEADER_CASES, ids=[c[0] for c in HEADER_CASES])
def test_each_header_rule_broken_is_refused_with_its_code(dmp: Dmp, name: str, change: Mutation, code: str) -> None:
    found = problem(dmp.submit(mutate(dmp.sample(), change)), 422, "document-invalid")["findings"]
    assert code in [f["code"] for f in found]
    assert all(set(f) == {"code", "location", "message"} for f in found)


@pytest.mark.parametrize(("name", "overrides", "code"), METADATA_CASES, ids=[c[0] for c in METADATA_CASES])
def test_each_metadata_rule_broken_is_refused_with_its_code(dmp: Dmp, name: str, overrides: dict[str, Any],
                                                            code: str) -> None:
    body = dmp.sample()
    body["metadata"] |= overrides
    found = problem(dmp.submit(body), 422, "document-invalid")["findings"]
    assert [f["code"] for f in found if f["code"] != "author-not-authenticated"] == [code]


def test_hash_and_size_mismatch_reported_together(dmp: Dmp) -> None:
    body = dmp.sample()
    body["metadata"] |= {"hash": hashlib.sha1(b"other").hexdigest(), "size": body["metadata"]["size"] + 1}
    found = problem(dmp.submit(body), 422, "document-invalid")["findings"]
    assert {f["code"]: f["location"] for f in found} == {"metadata-hash-mismatch": "metadata.hash",
                                                         "metadata-size-mismatch": "metadata.size"}


def test_refused_documents_are_not_stored(dmp: Dmp) -> None:
    body = dmp.sample()
    body["metadata"]["size"] = 0
    dmp.submit(body)
    assert problem(dmp.get(body["metadata"]["unique_id"]), 404, "document-unknown")


def test_patient_must_be_in_the_session_registry(dmp: Dmp) -> None:
    absent = next(i for i, p in enumerate(dmp.session["fixtures"]["patients"]) if p["scenario"] == "absent")
    problem(dmp.submit(dmp.sample(patient=absent)), 422, "patient-unknown")


def test_site_must_be_the_session_site(dmp: Dmp) -> None:
    body = dmp.sample()
    body["site"]["id"] = "999999999"
    problem(dmp.submit(body), 422, "site-mismatch")


def test_author_must_be_the_authenticated_practitioner(dmp: Dmp, sandbox_server: RunningSandbox) -> None:
    other = dmp.as_(token_for(sandbox_server, dmp.session, practitioner=1))
    found = problem(other.submit(dmp.sample(author=0)), 422, "document-invalid")["findings"]
    assert [f["code"] for f in found] == ["author-not-authenticated"]


def test_invalid_request_bodies(dmp: Dmp) -> None:
    body = dmp.sample()
    del body["site"]
    problem(dmp.submit(body), 422, "invalid-request")
    problem(dmp.submit(dmp.sample() | {"extra": 1}), 422, "invalid-request")
    problem(dmp.submit(dmp.sample() | {"document": "not base64 at all!"}), 400, "document-not-base64")


# ------------------------------------------------------------------------------------------ idempotence

def test_identical_resubmission_answers_the_same_entry(dmp: Dmp, admin: httpx.Client) -> None:
    body = dmp.sample()
    first = dmp.submit(body)
    again = dmp.submit(body)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    uid = body["metadata"]["unique_id"]
    assert [e["unique_id"] for e in dmp.listing(body["metadata"]["patient_id"])].count(uid) == 1
    assert outcomes(admin, dmp.sid)[-3:] == ["document-accepted", "document-resubmitted", "documents-listed"]


def test_same_unique_id_other_content_conflicts(dmp: Dmp) -> None:
    body = dmp.sample()
    assert dmp.submit(body).status_code == 201
    other = dmp.sample(document_id=body["metadata"]["unique_id"], body="Autre contenu.")
    problem(dmp.submit(other), 409, "unique-id-conflict")
    assert dmp.get(body["metadata"]["unique_id"]).json()["document"] == body["document"]


# ------------------------------------------------------------------------------------------ lifecycle

def test_replace_links_new_to_old(dmp: Dmp) -> None:
    old = dmp.sample()
    old_uid = old["metadata"]["unique_id"]
    assert dmp.submit(old).status_code == 201
    new = dmp.sample(replaces=old_uid, set_id=old_uid, version=2, body="Version corrigée.")
    r = dmp.replace(old_uid, new)
    assert r.status_code == 201, r.text
    assert r.json()["replaces"] == old_uid and r.json()["status"] == "approved"
    previous = dmp.get(old_uid).json()
    assert previous["status"] == "deprecated" and previous["replaced_by"] == new["metadata"]["unique_id"]
    assert dmp.replace(old_uid, new).status_code == 200  # a retried replacement is not a second one
    problem(dmp.replace(old_uid, dmp.sample()), 409, "document-not-current")
    listed = {e["unique_id"]: e["status"] for e in dmp.listing(old["metadata"]["patient_id"])}
    assert listed[old_uid] == "deprecated" and listed[new["metadata"]["unique_id"]] == "approved"


def test_replace_refusals(dmp: Dmp) -> None:
    problem(dmp.replace("1.2.3^nothing", dmp.sample()), 404, "document-unknown")
    old = dmp.sample()
    assert dmp.submit(old).status_code == 201
    problem(dmp.replace(old["metadata"]["unique_id"], dmp.sample(patient=1)), 422, "replace-patient-mismatch")
    problem(dmp.replace(old["metadata"]["unique_id"], old), 409, "unique-id-conflict")
    bad = dmp.sample()
    bad["metadata"]["size"] = 1
    problem(dmp.replace(old["metadata"]["unique_id"], bad), 422, "document-invalid")
    assert dmp.get(old["metadata"]["unique_id"]).json()["status"] == "approved"


def test_delete_keeps_the_entry_for_audit(dmp: Dmp, sandbox_server: RunningSandbox) -> None:
    body = dmp.sample()
    uid, patient_id = body["metadata"]["unique_id"], body["metadata"]["patient_id"]
    assert dmp.submit(body).status_code == 201
    problem(dmp.as_(token_for(sandbox_server, dmp.session, practitioner=2)).delete(uid), 403, "not-author")
    r = dmp.delete(uid)
    assert r.status_code == 200 and r.json()["status"] == "deleted" and r.json()["deleted"]
    assert dmp.delete(uid).status_code == 200
    problem(dmp.get(uid), 410, "document-deleted")
    assert uid not in [e["unique_id"] for e in dmp.listing(patient_id)]
    kept = {e["unique_id"]: e["status"] for e in dmp.listing(patient_id, include_deleted="true")}
    assert kept[uid] == "deleted"
    problem(dmp.delete("1.2.3^nothing"), 404, "document-unknown")


def test_hidden_documents_are_withheld_from_other_professionals(dmp: Dmp, sandbox_server: RunningSandbox) -> None:
    body = dmp.sample()
    uid, patient_id = body["metadata"]["unique_id"], body["metadata"]["patient_id"]
    assert dmp.submit(body).status_code == 201
    patient = dmp.as_(dmp.session["credentials"]["session_token"])  # the harness plays the patient
    r = patient.hide(uid)
    assert r.status_code == 200 and r.json()["hidden"] is True
    other = dmp.as_(token_for(sandbox_server, dmp.session, practitioner=3))
    problem(other.get(uid), 403, "document-hidden")
    assert uid not in [e["unique_id"] for e in other.listing(patient_id)]
    assert dmp.get(uid).json()["hidden"] is True  # its author still sees it, flagged
    assert {e["unique_id"]: e["hidden"] for e in dmp.listing(patient_id)}[uid] is True
    assert {e["unique_id"]: e["hidden"] for e in patient.listing(patient_id)}[uid] is True
    problem(patient.hide("1.2.3^nothing"), 404, "document-unknown")


def test_listing_by_bare_ins_and_unknown_patient(dmp: Dmp) -> None:
    body = dmp.sample(patient=2)
    assert dmp.submit(body).status_code == 201
    ins = body["metadata"]["patient_id"].split("^")[0]
    assert body["metadata"]["unique_id"] in [e["unique_id"] for e in dmp.listing(ins)]
    r = dmp.http.get(f"{dmp.base}/patients/123456789012345/documents", headers=dmp.headers)
    problem(r, 404, "patient-unknown")


# ------------------------------------------------------------------------------------------ faults

def test_unavailable_then_retry_stores_one_copy(fresh: Dmp, admin: httpx.Client) -> None:
    assert admin.put(f"/admin/sessions/{fresh.sid}/faults",
                     json={"dmp": {"unavailable": 2, "retry_after": 3}}).status_code == 200
    body = fresh.sample()
    for _ in range(2):
        r = fresh.submit(body)
        problem(r, 503, "service-unavailable")
        assert r.headers["retry-after"] == "3"
    problem(fresh.get(body["metadata"]["unique_id"]), 404, "document-unknown")
    assert fresh.submit(body).status_code == 201
    assert fresh.submit(body).status_code == 200
    assert [e["unique_id"] for e in fresh.listing(body["metadata"]["patient_id"])] == [body["metadata"]["unique_id"]]
    assert outcomes(admin, fresh.sid) == ["service-unavailable", "service-unavailable", "document-unknown",
                                          "document-accepted", "document-resubmitted", "documents-listed"]


def test_slow_fault_delays_answers(fresh: Dmp, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # the waits the shared record's service asks for are recorded (and really waited): after the fault is cleared it
    # asks none, which says "not delayed" without a bound on wall time a loaded machine could break (asyncio's sleep
    # serves the server's own loop too: only the service's calls are counted)
    waits: list[float] = []
    sleep = asyncio.sleep

    def recorded(seconds: float, *args: Any) -> Coroutine[Any, Any, Any]:
        if sys._getframe(1).f_globals.get("__name__") == dmp_service.__name__:
            waits.append(seconds)
        return sleep(seconds, *args)

    monkeypatch.setattr(asyncio, "sleep", recorded)
    admin.put(f"/admin/sessions/{fresh.sid}/faults", json={"dmp": {"slow": 0.8}})
    body = fresh.sample()
    started = time.perf_counter()
    assert fresh.submit(body).status_code == 201
    assert time.perf_counter() - started >= 0.8
    started = time.perf_counter()
    problem(fresh.get("1.2.3^nothing"), 404, "document-unknown")  # errors are delayed too
    assert time.perf_counter() - started >= 0.8
    assert waits == [0.8, 0.8]
    admin.put(f"/admin/sessions/{fresh.sid}/faults", json={"dmp": None})
    assert fresh.get(body["metadata"]["unique_id"]).status_code == 200
    assert waits == [0.8, 0.8]  # no delay asked once the fault is cleared


def test_trace_records_findings(fresh: Dmp, admin: httpx.Client) -> None:
    body = fresh.sample()
    body["metadata"]["type_code"] = "60591-5"
    fresh.submit(body)
    exchange = trace_payload(admin.get(f"/admin/sessions/{fresh.sid}/trace"))["exchanges"][-1]
    assert exchange["outcome"] == "document-invalid"
    assert [f["code"] for f in exchange["outcome_details"]["findings"]] == ["metadata-type-code-mismatch"]


# ------------------------------------------------------------------------------------------ production

INSTALLATION = {"vendor_id": "vendor-test", "software": {"id": "sw-1", "name": "usine-sample", "version": "1.0.0",
                                                         "registration_id": "REG-SAMPLE-0001"},
                "site": {"id": "", "size": "M", "name": "Centre hospitalier test"},
                "wave": "2026-W1", "category": "HOSPITAL"}


def events_for(admin: httpx.Client, reference: str) -> list[dict[str, Any]]:
    found, cursor = [], 0
    while True:
        page = admin.get("/admin/events", params={"after": cursor}).json()
        found += [e for e in page["events"] if e["data"]["reference"] == reference]
        if page["next"] == cursor or not page["events"]:
            return found
        cursor = page["next"]


def test_production_acceptance_emits_one_event(admin: httpx.Client, http: httpx.Client, dmp: Dmp,
                                               sandbox_server: RunningSandbox) -> None:
    site = dmp.session["fixtures"]["sites"][0]["site_id"]
    r = admin.post("/admin/installations", json=INSTALLATION | {"site": INSTALLATION["site"] | {"id": site}})
    assert r.status_code == 201, r.text
    inst, headers = r.json(), {"Authorization": f"Bearer {r.json()['token']}"}
    body = dmp.sample(type_code="11502-2")
    uid = body["metadata"]["unique_id"]

    first = http.post("/prod/dmp/documents", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert http.post("/prod/dmp/documents", json=body, headers=headers).status_code == 200
    events = events_for(admin, uid)
    assert len(events) == 1
    event = events[0]
    assert event["source"] == "urn:usine:sandbox:dmp" and event["subject"] == inst["id"]
    document = base64.b64decode(body["document"])
    expected = {"kind": "document", "document_type": "11502-2", "bytes": len(document),
                "sha256": hashlib.sha256(document).hexdigest(), "reference": uid, "installation_id": inst["id"]}
    assert {k: event["data"][k] for k in expected} == expected
    lines = sandbox_server.config.events_path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines if uid in line] == [event["id"]]

    other = dmp.sample()  # the same traffic in a test session emits nothing
    assert dmp.submit(other).status_code == 201
    assert events_for(admin, other["metadata"]["unique_id"]) == []


def test_production_event_is_a_valid_cloudevent(admin: httpx.Client, http: httpx.Client, dmp: Dmp,
                                                official_schemas: Path) -> None:
    site = dmp.session["fixtures"]["sites"][0]["site_id"]
    inst = admin.post("/admin/installations", json=INSTALLATION | {"site": INSTALLATION["site"] | {"id": site}}).json()
    body = dmp.sample()
    r = http.post("/prod/dmp/documents", json=body, headers={"Authorization": f"Bearer {inst['token']}"})
    assert r.status_code == 201, r.text
    [event] = events_for(admin, body["metadata"]["unique_id"])
    jsonschema.validate(event, json.loads((official_schemas / "cloudevents" / "cloudevents.json").read_text()))
    assert event["specversion"] == "1.0" and "data_base64" not in event


def test_concurrent_identical_submissions_store_and_emit_once(admin: httpx.Client, dmp: Dmp,
                                                              sandbox_server: RunningSandbox) -> None:
    site = dmp.session["fixtures"]["sites"][0]["site_id"]
    inst = admin.post("/admin/installations", json=INSTALLATION | {"site": INSTALLATION["site"] | {"id": site}}).json()
    body = dmp.sample(body="Envoyé six fois à la fois.")  # no other test's document of the same second

    def send(_: int) -> int:
        with httpx.Client(base_url=sandbox_server.base_url, timeout=30) as client:
            return client.post("/prod/dmp/documents", json=body,
                               headers={"Authorization": f"Bearer {inst['token']}"}).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(send, range(6)))
    assert statuses == [200] * 5 + [201]
    assert len(events_for(admin, body["metadata"]["unique_id"])) == 1


def test_production_refusals(admin: httpx.Client, http: httpx.Client, dmp: Dmp) -> None:
    r = admin.post("/admin/installations", json=INSTALLATION | {"site": INSTALLATION["site"] | {"id": "750000001"}})
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    body = dmp.sample()
    problem(http.post("/prod/dmp/documents", json=body), 401, "installation-token-missing")
    problem(http.post("/prod/dmp/documents", json=body, headers={"Authorization": "Bearer nope"}), 401,
            "installation-token-invalid")
    problem(http.post("/prod/dmp/documents", json=body, headers=headers), 422, "site-mismatch")
    body["site"]["id"] = "750000001"  # the installation's site, but the document is kept by the session's site
    problem(http.post("/prod/dmp/documents", json=body, headers=headers), 422, "custodian-mismatch")
    body = dmp.sample(site="750000001")
    bad = copy.deepcopy(body)
    bad["metadata"]["hash"] = "0" * 40
    problem(http.post("/prod/dmp/documents", json=bad, headers=headers), 422, "document-invalid")
    absent = next(i for i, p in enumerate(dmp.session["fixtures"]["patients"]) if p["scenario"] == "absent")
    unknown_patient = dmp.sample(patient=absent, site="750000001")  # no session registry: any valid INS will do
    assert http.post("/prod/dmp/documents", json=unknown_patient, headers=headers).status_code == 201
    assert events_for(admin, body["metadata"]["unique_id"]) == []


def _installed(admin: httpx.Client, site: str, **over: Any) -> dict[str, str]:
    r = admin.post("/admin/installations", json=INSTALLATION | {"site": INSTALLATION["site"] | {"id": site}} | over)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_production_refuses_a_document_of_another_software(admin: httpx.Client, http: httpx.Client, dmp: Dmp) -> None:
    """QA: a document whose submission named another software (unlabelled, or another version) was accepted and its
    event paid to the installation's label."""
    site = dmp.session["fixtures"]["sites"][0]["site_id"]
    headers = _installed(admin, site)
    for software in ({"name": "Other", "version": "9.0", "registration_id": "REG-OTHER"},
                     INSTALLATION["software"] | {"version": "0.9"},
                     {"name": "usine-sample", "version": "1.0.0", "registration_id": "REG-SAMPLE-0001X"}):
        body = dmp.sample()
        body["software"] = {k: software[k] for k in ("name", "version", "registration_id")}
        found = problem(http.post("/prod/dmp/documents", json=body, headers=headers), 403, "document-other-software")
        assert found["expected"] == {"registration_id": "REG-SAMPLE-0001", "version": "1.0.0"}
        assert events_for(admin, body["metadata"]["unique_id"]) == []
    unregistered = _installed(admin, site, software=INSTALLATION["software"] | {"registration_id": ""})
    body = dmp.sample(body="Le document du logiciel de l'installation.")
    problem(http.post("/prod/dmp/documents", json=body, headers=unregistered), 403, "document-other-software")
    assert http.post("/prod/dmp/documents", json=body, headers=headers).status_code == 201


@pytest.mark.parametrize(("wave", "category", "code"), [("2026-W1", "RADIOLOGY", "category-unknown"),
                                                        ("2026-W1", "NOT_A_CATEGORY", "category-unknown"),
                                                        ("1999-W9", "HOSPITAL", "wave-unknown")])
def test_an_installation_is_registered_under_a_wave_and_category_of_the_catalog(
        admin: httpx.Client, dmp: Dmp, wave: str, category: str, code: str) -> None:
    """Registration took any wave and category (admin-only): an installation under a label that cannot exist, whose
    data every production service then refused. 422, saying which waves or categories there are; nothing stored."""
    site = dmp.session["fixtures"]["sites"][0]["site_id"]
    before = admin.get("/admin/installations").json()["installations"]
    r = admin.post("/admin/installations", json=INSTALLATION | {"site": INSTALLATION["site"] | {"id": site},
                                                                "wave": wave, "category": category})
    found = problem(r, 422, code)
    assert found["where"] == code.split("-")[0]
    assert ("waves: 2026-W1" if code == "wave-unknown" else "categories: HOSPITAL, GP, LAB, PHARMACY") in found["detail"]
    assert admin.get("/admin/installations").json()["installations"] == before


@pytest.mark.parametrize("site", [" 750000001", "750000001\u200b", "siret-a", "７５００００００１", "-1"])
def test_an_installation_site_has_the_one_spelling_payments_take(admin: httpx.Client, site: str) -> None:
    """A payment run refuses a site id spelled otherwise than upper-case ASCII, digits, ``.``, ``_``, ``-`` (each
    spelling was another installation, paid again): the sandbox registered such a site and emitted events for it
    that the payment run then refused."""
    r = admin.post("/admin/installations", json=INSTALLATION | {"site": INSTALLATION["site"] | {"id": site}})
    assert r.status_code == 422, r.text
    assert [e["where"] for e in r.json()["errors"]] == ["body.site.id"], r.text


@pytest.mark.parametrize(("wave", "category"), [("2026-W1", "PHARMACY"), ("1999-W9", "HOSPITAL"),
                                                ("2026-W1", "NOT_A_CATEGORY")])
def test_production_refuses_documents_the_label_does_not_cover(admin: httpx.Client, http: httpx.Client, dmp: Dmp,
                                                               sandbox_server: RunningSandbox,
                                                               wave: str, category: str) -> None:
    """QA: an installation whose category's label covers no document (a pharmacy of 2026-W1), or of a wave or category
    the catalog no longer has (registered before it changed: written to the store here), had its documents accepted
    and emitted as events."""
    site = dmp.session["fixtures"]["sites"][0]["site_id"]
    body = dmp.sample()
    headers = _installed(admin, site, wave=wave if wave == "2026-W1" and category == "PHARMACY" else "2026-W1")
    store = sandbox_server.server.config.app.state.store
    token = headers["Authorization"].removeprefix("Bearer ")
    inst = store.installation_by_token_hash(secret_hash(token))
    store.put_installation(inst | {"wave": wave, "category": category}, secret_hash(token))
    found = problem(http.post("/prod/dmp/documents", json=body, headers=headers), 403, "kind-not-covered")
    assert found["kind"] == "document"
    assert events_for(admin, body["metadata"]["unique_id"]) == []


def _prefixed(doc: bytes) -> bytes:
    """The document with every element in a ``v3:`` prefix (and its xsi:type values), no default namespace."""
    text = re.sub(rb"<(/?)(?=[A-Za-z])", rb"<\1v3:", doc).replace(b'xmlns="urn:hl7-org:v3"', b'xmlns:v3="urn:hl7-org:v3"')
    return re.sub(rb'xsi:type="([A-Z_]+)"', rb'xsi:type="v3:\1"', text)


def _attributes_reversed(doc: bytes) -> bytes:
    root = etree.fromstring(doc)
    for el in root.iter(etree.Element):
        items = list(el.attrib.items())
        el.attrib.clear()
        for k, v in reversed(items):
            el.set(k, v)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _identified(doc: bytes, extension: str, *, version: int | None = None) -> bytes:
    """The document under another id and set id (and, with ``version``, as a new version replacing the first)."""
    root = etree.fromstring(doc)
    old = root.find(f"{{{cda.NS}}}id")
    assert old is not None
    first = old.get("root", "") + "^" + old.get("extension", "")
    for tag in ("id", "setId"):
        el = root.find(f"{{{cda.NS}}}{tag}")
        assert el is not None
        el.set("extension", extension)
    if version is not None:
        number = root.find(f"{{{cda.NS}}}versionNumber")
        assert number is not None
        number.set("value", str(version))
        related = etree.Element(f"{{{cda.NS}}}relatedDocument", typeCode="RPLC")
        etree.SubElement(etree.SubElement(related, f"{{{cda.NS}}}parentDocument"), f"{{{cda.NS}}}id",
                         root=first.partition("^")[0], extension=first.partition("^")[2])
        number.addnext(related)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _rewrapped(doc: bytes) -> bytes:
    """A level-1 document whose base64 body is cut in lines of 76 characters."""
    found = re.search(rb'(representation="B64">)([A-Za-z0-9+/=]+)<', doc)
    assert found is not None
    body = found.group(2)
    lines = b"\n".join(body[i:i + 76] for i in range(0, len(body), 76))
    return doc.replace(found.group(1) + body, found.group(1) + b"\n" + lines + b"\n")


def _in_paris_summer_time(doc: bytes) -> bytes:
    """Every instant of the document (``value="YYYYMMDDHHMMSS+0000"``) written in UTC+2: the same instants."""
    def shifted(found: re.Match[bytes]) -> bytes:
        when = dt.datetime.strptime(found.group(1).decode(), "%Y%m%d%H%M%S") + dt.timedelta(hours=2)
        return b'value="' + when.strftime("%Y%m%d%H%M%S").encode() + b'+0200"'
    return re.sub(rb'value="(\d{14})\+0000"', shifted, doc)


def _other_pad_bits(doc: bytes) -> bytes:
    """The base64 body with its last character's unused bits set otherwise: the same bytes decoded."""
    found = re.search(rb'representation="B64">([A-Za-z0-9+/]+)(=+)<', doc)
    assert found is not None
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = found.group(1)
    last = alphabet.index(body[-1:]) ^ 1
    other = body[:-1] + alphabet[last:last + 1]
    assert base64.b64decode(other + found.group(2)) == base64.b64decode(body + found.group(2))
    return doc.replace(body + found.group(2), other + found.group(2))


#: each: the same document re-spelled (bytes → bytes), or given another id (the same document copied)
RESPELLINGS: dict[str, Callable[[bytes], bytes]] = {
    "no XML declaration": lambda d: d.split(b"?>", 1)[1].lstrip(),
    "a comment and a processing instruction": lambda d: d.replace(b"<realmCode", b"<!-- copy --><?x y?><realmCode"),
    "a comment inside the title": lambda d: re.sub(rb"(<title>[^<]{3})", rb"\1<!---->", d),
    "no indentation": lambda d: re.sub(rb">\s+<", b"><", d),
    "white space runs in texts": lambda d: re.sub(rb"(<title>[^<]*?) ", rb"\1 \n\t ", d),
    "attributes in another order": _attributes_reversed,
    "a namespace prefix": _prefixed,
    "a schema location": lambda d: d.replace(b'xmlns="urn:hl7-org:v3"', b'xmlns="urn:hl7-org:v3" '
                                             b'xsi:schemaLocation="urn:hl7-org:v3 CDA.xsd"'),
    "CRLF line ends": lambda d: d.replace(b"\n", b"\r\n"),
    "the body's base64 in lines": _rewrapped,
    "another id and set id": lambda d: _identified(d, "copy-1"),
    "a new version replacing it, the same content": lambda d: _identified(d, "copy-2", version=2),
    "its instants in another time zone": _in_paris_summer_time,
    "the body's base64 with other unused bits": _other_pad_bits,
    # invisible characters (Unicode Cf) in the title: a copy re-spelled with them read as a new document (one event
    # each, five of them a hospital's proof of use)
    "a zero-width space in the title": lambda d: re.sub(rb"(<title>[^<]{3})", "\\1\u200b".encode(), d),
    "a word joiner and a soft hyphen in the title": lambda d: re.sub(rb"(<title>[^<]{2})([^<]{2})",
                                                                     "\\1\u2060\\2\u00ad".encode(), d),
}


@pytest.mark.parametrize("respelling", RESPELLINGS)
def test_production_receives_one_document_once_however_respelled(admin: httpx.Client, http: httpx.Client, dmp: Dmp,
                                                                  respelling: str) -> None:
    """QA: the same document under another uniqueId (even its very bytes), or re-spelled (declaration, comments,
    white space, attribute order, prefixes) and given a fresh id, was recorded again with a data-received event each
    time: five submissions of one document met a hospital's proof of use (5 events)."""
    site = dmp.session["fixtures"]["sites"][0]["site_id"]
    headers = _installed(admin, site)
    # level 1 (a PDF body), of its own text: another test's document of the same second would be the same document
    original = base64.b64decode(dmp.sample(type_code="11490-0", body=f"Lettre: {respelling}.")["document"])
    first = samples.submission(original, site_id=site)
    assert http.post("/prod/dmp/documents", json=first, headers=headers).status_code == 201
    uid = first["metadata"]["unique_id"]
    respelled = RESPELLINGS[respelling](original)
    assert respelled != original
    again = samples.submission(respelled, site_id=site)
    same_bytes_new_id = copy.deepcopy(first)
    same_bytes_new_id["metadata"]["unique_id"] = "1.2.250.1.999.42.1^" + hashlib.sha1(respelling.encode()).hexdigest()
    for body in (again, same_bytes_new_id):
        r = http.post("/prod/dmp/documents", json=body, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["unique_id"] == uid and r.headers["location"].endswith(quote(uid, safe=""))
        if body["metadata"]["unique_id"] != uid:
            assert events_for(admin, body["metadata"]["unique_id"]) == []
    assert len(events_for(admin, uid)) == 1


def test_production_other_documents_are_their_own(admin: httpx.Client, http: httpx.Client, dmp: Dmp) -> None:
    """The meaning of a document is all it says: another text, patient, time or a comment-cut title are other
    documents, each received (one event each)."""
    site = dmp.session["fixtures"]["sites"][0]["site_id"]
    headers = _installed(admin, site)
    when = dt.datetime(2026, 5, 4, 8, 30, tzinfo=dt.UTC)
    bodies = [dmp.sample(effective_time=when, body="Patient vu. RAS."),
              dmp.sample(effective_time=when, body="Patient vu. Fièvre."),
              dmp.sample(effective_time=when, body="Patient vu. RAS.", patient=1),
              dmp.sample(effective_time=when + dt.timedelta(seconds=1), body="Patient vu. RAS."),
              dmp.sample(effective_time=when, body="Patient vu. RAS.", title="Lettre de liaison")]
    for body in bodies:
        r = http.post("/prod/dmp/documents", json=body, headers=headers)
        assert r.status_code == 201, r.text
        assert len(events_for(admin, body["metadata"]["unique_id"])) == 1
    assert cda.meaning(parse_xml(b"<a xmlns='urn:hl7-org:v3'>A<!---->B</a>")) \
        != cda.meaning(parse_xml(b"<a xmlns='urn:hl7-org:v3'>A B</a>"))


def test_production_another_installations_copy_is_not_its_document(admin: httpx.Client, http: httpx.Client,
                                                                   dmp: Dmp) -> None:
    """Review: a document's meaning was one for every installation: an installation (another site, another
    software) that filed a copy of another's document first made the author's own submission a 200 "duplicate" of
    its entry (no event for the author, the event paid to the copier, and the copier's entry — its site, software,
    metadata — shown to the author). A meaning is an installation's own, as its messages' and deposits' are."""
    site = dmp.session["fixtures"]["sites"][0]["site_id"]
    author = _installed(admin, site)
    other_software = {"id": "sw-2", "name": "copier", "version": "2.0", "registration_id": "REG-COPIER-0002"}
    copier = _installed(admin, site, software=other_software)  # another software of the same site
    body = dmp.sample(body="Le compte rendu de l'auteur, copie par un autre.")
    copy_ = copy.deepcopy(body)
    copy_["metadata"]["unique_id"] = "1.2.250.1.999.77.1^copy"
    copy_["software"] = {k: other_software[k] for k in ("name", "version", "registration_id")}
    assert http.post("/prod/dmp/documents", json=copy_, headers=copier).status_code == 201
    r = http.post("/prod/dmp/documents", json=body, headers=author)
    assert r.status_code == 201, r.text
    assert r.json()["unique_id"] == body["metadata"]["unique_id"] and r.json()["site"] == {"id": site}
    assert len(events_for(admin, body["metadata"]["unique_id"])) == 1
    again = copy.deepcopy(body)
    again["metadata"]["unique_id"] = "1.2.250.1.999.77.1^again"
    r = http.post("/prod/dmp/documents", json=again, headers=author)  # its own again: still one document
    assert r.status_code == 200 and r.json()["unique_id"] == body["metadata"]["unique_id"]
    assert events_for(admin, again["metadata"]["unique_id"]) == []


def test_production_a_site_sends_the_documents_it_keeps_not_another_sites(admin: httpx.Client, http: httpx.Client,
                                                                         dmp: Dmp) -> None:
    """QA (services): production checked the submission's JSON site only: an installation at another site sent
    another care site's documents (their custodian that site) as its own site's, and each was a data-received event
    paying that installation. The CDA custodian must name the installation's site (FINESS root)."""
    site = dmp.session["fixtures"]["sites"][0]["site_id"]
    elsewhere = _installed(admin, "SITE-ELSEWHERE")
    body = dmp.sample(body="Un compte rendu du site d'origine.")  # kept by the session's site
    body["site"] = {"id": "SITE-ELSEWHERE"}
    r = http.post("/prod/dmp/documents", json=body, headers=elsewhere)
    assert r.status_code == 422 and r.json()["code"] == "custodian-mismatch", r.text
    assert site in r.json()["detail"] and "SITE-ELSEWHERE" in r.json()["detail"]
    assert events_for(admin, body["metadata"]["unique_id"]) == []
    body["site"] = {"id": site}  # its own site: the custodian's
    assert http.post("/prod/dmp/documents", json=body, headers=_installed(admin, site)).status_code == 201


def test_production_a_document_kept_by_two_sites_is_refused(admin: httpx.Client, http: httpx.Client,
                                                            dmp: Dmp) -> None:
    """QA (services): a custodian naming two FINESS ids, this installation's and another's, was received at each
    site: the same document, one data-received event per installation. One care site keeps a document, named alone."""
    site = dmp.session["fixtures"]["sites"][0]["site_id"]
    body = dmp.sample(body="Un compte rendu gardé par deux sites.")
    document = base64.b64decode(body["document"])
    org = re.search(rb"<representedCustodianOrganization[^>]*>\s*<id [^>]*/>", document)
    assert org is not None
    both = document.replace(org.group(0), org.group(0) + f'<id root="{cda.FINESS_ROOT}" extension="750000002"/>'
                            .encode(), 1)
    for at, other in ((site, "750000002"), ("750000002", site)):
        sent = resign(body, both)
        sent["site"] = {"id": at}
        r = http.post("/prod/dmp/documents", json=sent, headers=_installed(admin, at))
        assert r.status_code == 422 and r.json()["code"] == "custodian-mismatch", r.text
        assert "names 2 care sites" in r.json()["detail"] and other in r.json()["detail"]
    assert events_for(admin, body["metadata"]["unique_id"]) == []
    assert http.post("/prod/dmp/documents", json=body, headers=_installed(admin, site)).status_code == 201


def test_a_meanings_instants_are_read_in_utc_at_their_precision() -> None:
    """Review: the same instants written in another time zone, or the same base64 bytes with other unused bits, were
    another meaning (a fresh event); instants are compared in UTC at their own precision, what is not one (a date, an
    impossible month, no offset) as written."""
    assert cda._in_utc("20260504103000+0200") == cda._in_utc("20260504083000+0000") == "20260504083000+0000"
    assert cda._in_utc("202605040000-0130") == "202605040130+0000"
    assert cda._in_utc("20260504103000.25+0200") == "20260504083000.25+0000"
    for kept in ("20260504+0200", "2026050410+0200", "20261304083000+0000", "00010101000000+0100", "20260504083000",
                 "5.0", "", "#res-1"):
        assert cda._in_utc(kept) == kept
    assert cda._bytes_of("QR==") == cda._bytes_of("QQ==") == "QQ==" and cda._bytes_of("not base64!") == "not base64!"

    def doc(value: str) -> bytes:
        return f"<a xmlns='urn:hl7-org:v3'><effectiveTime value='{value}'/></a>".encode()

    assert cda.meaning(parse_xml(doc("20260504103000+0200"))) == cda.meaning(parse_xml(doc("20260504083000+0000")))
    assert cda.meaning(parse_xml(doc("20260504083001+0000"))) != cda.meaning(parse_xml(doc("20260504083000+0000")))
    assert cda.meaning(parse_xml(doc("20260505+0200"))) != cda.meaning(parse_xml(doc("20260504+0000")))


def test_openapi_documents_the_services(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    post = doc["paths"]["/s/{session_id}/dmp/documents"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert {"unique_id", "patient_id", "hash", "size"} <= set(schema["properties"]["metadata"]["properties"])
    assert "/prod/dmp/documents" in doc["paths"] and "/s/{session_id}/insi/lookup" in doc["paths"]
    assert "/s/{session_id}/dmp/documents/{unique_id}/hide" in doc["paths"]


def test_production_unique_ids_are_each_installations_own(admin: httpx.Client, http: httpx.Client, dmp: Dmp) -> None:
    """Review left it noticed: a production document's uniqueId was one for every installation, so an installation
    that filed a document first under another's predictable id (an OID root and a counter) made that one's real
    document a 409 — never received, never paid. Each installation's ids are its own now, as its messages' are."""
    site = dmp.session["fixtures"]["sites"][0]["site_id"]
    author = _installed(admin, site)
    other_software = {"id": "sw-3", "name": "squatter", "version": "3.0", "registration_id": "REG-SQUAT-0003"}
    squatter = _installed(admin, "SITE-SQUAT", software=other_software)
    body = dmp.sample(body="Le compte rendu dont un autre a pris l'identifiant.")
    taken = dmp.sample(body="Autre chose, sous le même identifiant.", site="SITE-SQUAT")
    taken["metadata"]["unique_id"] = body["metadata"]["unique_id"]
    taken["software"] = {k: other_software[k] for k in ("name", "version", "registration_id")}
    assert http.post("/prod/dmp/documents", json=taken, headers=squatter).status_code == 201
    r = http.post("/prod/dmp/documents", json=body, headers=author)
    assert r.status_code == 201, r.text
    events = events_for(admin, body["metadata"]["unique_id"])  # one each: the squatter's and the author's
    assert len(events) == 2 and len({e["data"]["installation_id"] for e in events}) == 2
    other = dmp.sample(body="Un autre document de l'auteur.")
    other["metadata"]["unique_id"] = body["metadata"]["unique_id"]
    r = http.post("/prod/dmp/documents", json=other, headers=author)  # the author's own id, other content: 409
    assert r.status_code == 409 and r.json()["code"] == "unique-id-conflict", r.text
