"""Sandbox observables added for the documents, messaging and directory checks, over real HTTP.

Value sets and Schematron published by the shared record; its faults ``lost_replies`` (stored, then
503) and ``patient_hides``; the directory's ``active`` flag, ETag / max-age / 304 answers and the
``max_age`` fault; the messaging service refusing inactive recipients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from conformity.catalog import load_catalog
from conformity.packs.health import cda_rules
from conformity.xmlsafe import parse_xml
from sandbox.packs.health import samples
from sandbox.packs.health.fixtures import generate
from sandbox.packs.health.valuesets import PRACTICE_SETTING_BY_PROFESSION, PRACTICE_SETTING_BY_SPECIALTY, VALUE_SETS
from sandbox.server import RunningSandbox
from tests.sandbox.dmp_client import Dmp, token_for
from tests.sandbox.helpers import trace_payload


@pytest.fixture(scope="module")
def http(sandbox_server: RunningSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_server.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def practitioner(sandbox_server: RunningSandbox, http: httpx.Client, new_session: Callable[..., Any]) -> Dmp:
    session = new_session(seed=4242)
    return Dmp(http, session, token_for(sandbox_server, session))


def set_faults(admin: httpx.Client, dmp: Dmp, faults: dict[str, Any]) -> None:
    r = admin.put(f"/admin/sessions/{dmp.sid}/faults", json=faults)
    assert r.status_code == 200, r.text


def test_value_sets_and_schematron_are_published(practitioner: Dmp) -> None:
    r = practitioner.http.get(practitioner.base + "/value-sets", headers=practitioner.headers)
    assert r.status_code == 200
    published = r.json()
    assert "urn:ihe:iti:xds-sd:pdf:2008" in published["value_sets"]["format_code"]
    assert published["practice_setting_by_specialty"]["SM54"] == "MEDECINE_GENERALE"
    r = practitioner.http.get(practitioner.base + "/schematron", headers=practitioner.headers)
    assert r.status_code == 200 and r.text == cda_rules.SCHEMATRON


def test_sample_documents_pass_the_published_schematron() -> None:
    fixtures = generate(3)
    for type_code in ("11502-2", "34106-7"):
        doc = samples.build_cda(fixtures["patients"][0], fixtures["practitioners"][0] | {"profession_code": "10"},
                                fixtures["organisations"][0], type_code=type_code)
        assert [f for f in cda_rules.run(parse_xml(doc)) if f.is_error] == []


def test_lost_reply_stores_then_answers_503(admin: httpx.Client, practitioner: Dmp) -> None:
    set_faults(admin, practitioner, {"dmp": {"lost_replies": 1, "retry_after": 2}})
    body = practitioner.sample()
    first = practitioner.submit(body)
    assert first.status_code == 503 and first.headers["retry-after"] == "2"
    again = practitioner.submit(body)  # the very same submission: recognised, not duplicated
    assert again.status_code == 200
    assert practitioner.get(body["metadata"]["unique_id"]).status_code == 200


def test_patient_hides_the_next_new_document(admin: httpx.Client, practitioner: Dmp,
                                             sandbox_server: RunningSandbox) -> None:
    set_faults(admin, practitioner, {"dmp": {"patient_hides": 1}})
    hidden, shown = practitioner.sample(), practitioner.sample()
    assert practitioner.submit(hidden).json()["hidden"] is True
    assert practitioner.submit(shown).json()["hidden"] is False
    other = practitioner.as_(token_for(sandbox_server, practitioner.session, practitioner=1))
    assert other.get(hidden["metadata"]["unique_id"]).status_code == 403
    assert practitioner.get(hidden["metadata"]["unique_id"]).json()["hidden"] is True


def test_directory_marks_the_retired_homonym_inactive(practitioner: Dmp) -> None:
    fx = practitioner.session["fixtures"]
    retired = [p for p in fx["practitioners"] if not p["active"]]
    assert len(retired) == 1 and retired[0]["family_name"] == fx["practitioners"][1]["family_name"]
    r = practitioner.http.get(f"/s/{practitioner.sid}/directory/addresses", headers=practitioner.headers,
                              params={"address": retired[0]["mss_address"]})
    assert r.json()[0]["active"] is False


def test_directory_answers_carry_etag_and_max_age_and_revalidate(admin: httpx.Client, practitioner: Dmp) -> None:
    url = f"/s/{practitioner.sid}/directory/organisations"
    first = practitioner.http.get(url, headers=practitioner.headers)
    assert first.headers["cache-control"] == "max-age=300" and first.headers["etag"].startswith('"')
    same = practitioner.http.get(url, headers=practitioner.headers | {"If-None-Match": first.headers["etag"]})
    assert same.status_code == 304 and same.content == b""
    set_faults(admin, practitioner, {"directory": {"max_age": 0}})
    assert practitioner.http.get(url, headers=practitioner.headers).headers["cache-control"] == "max-age=0"
    trace = trace_payload(admin.get(f"/admin/sessions/{practitioner.sid}/trace"))
    recorded = [e for e in trace["exchanges"] if e.get("service") == "directory"]
    assert recorded[0]["response"]["headers"]["etag"] == first.headers["etag"]
    assert recorded[1]["outcome"] == "search-not-modified"


def test_messages_to_inactive_addresses_are_refused(practitioner: Dmp) -> None:
    fx = practitioner.session["fixtures"]
    retired = next(p for p in fx["practitioners"] if not p["active"])
    r = practitioner.http.post(f"/s/{practitioner.sid}/mss/messages", headers=practitioner.headers,
                               json={"from": fx["practitioners"][0]["mss_address"], "to": [retired["mss_address"]],
                                     "subject": "s", "body": "b"})
    assert r.status_code == 422 and r.json()["code"] == "recipient-inactive"


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_the_referential_keeps_the_value_sets_the_sandbox_publishes(version: str) -> None:
    """DOCSHARE-016's parameters (what the checks read) are the sandbox's value sets (what software reads)."""
    req = next(r for r in load_catalog().referentials[("DOCSHARE", version)].requirements if r.id == "DOCSHARE-016")
    names = {"class_codes": "class_code", "format_codes": "format_code", "facility_types": "healthcare_facility_type",
             "practice_settings": "practice_setting", "language_codes": "language_code",
             "author_roles": "author_role", "author_specialties": "author_specialty"}
    for param, value_set in names.items():
        if param in req.parameters or version == "2.0":
            assert sorted(req.parameters[param]) == sorted(VALUE_SETS[value_set]), param
    if version == "2.0":
        assert req.parameters["practice_setting_by_specialty"] == PRACTICE_SETTING_BY_SPECIALTY
        assert req.parameters["practice_setting_by_profession"] == PRACTICE_SETTING_BY_PROFESSION
