"""The directory service: searches and filters over the session fixtures, errors, the unavailable fault."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformity.packs.health.ins import normalise_name
from sandbox.server import RunningSandbox
from tests.sandbox.helpers import create_session, trace_payload

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def session(admin: httpx.Client) -> dict[str, Any]:
    return create_session(admin, 1, label="directory")


@pytest.fixture(scope="module")
def directory(sandbox_server: RunningSandbox, session: dict[str, Any],
              mint: Callable[..., str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=session["endpoints"]["directory"], timeout=30,
                      headers={"Authorization": f"Bearer {mint(session)}"}) as c:
        yield c


def search(client: httpx.Client, what: str, **params: str) -> list[dict[str, Any]]:
    r = client.get(f"/{what}", params=params)
    assert r.status_code == 200, r.text
    found = r.json()
    assert isinstance(found, list)
    return found


def test_practitioners_without_filter_are_the_fixtures(directory: httpx.Client, session: dict[str, Any]) -> None:
    assert search(directory, "practitioners") == session["fixtures"]["practitioners"]


def test_practitioner_by_national_id_or_rpps(directory: httpx.Client, session: dict[str, Any]) -> None:
    p = session["fixtures"]["practitioners"][2]
    assert search(directory, "practitioners", national_id=p["national_id"]) == [p]
    assert search(directory, "practitioners", national_id=p["rpps"]) == [p]
    assert search(directory, "practitioners", national_id="899999999999") == []


def test_practitioner_name_is_normalised_and_partial(directory: httpx.Client, session: dict[str, Any]) -> None:
    pracs = session["fixtures"]["practitioners"]
    eloi = next(p for p in pracs if p["family_name"] == "Éloi")  # seed 1 fixtures
    assert eloi in search(directory, "practitioners", name="eloi")
    assert eloi in search(directory, "practitioners", name=f"  {eloi['given_name'].upper()}   ÉLOI ")
    hyphenated = next(p for p in pracs if p["family_name"] == "Bénard-Lefébure-Montmorency")
    assert search(directory, "practitioners", name="lefebure") == [hyphenated]
    for p in pracs:
        partial = p["family_name"][1:-1]
        found = search(directory, "practitioners", name=partial)
        assert p in found
        assert all(normalise_name(partial) in normalise_name(f"{f['family_name']} {f['given_name']}") for f in found)
    assert search(directory, "practitioners", name="zzzz") == []


def test_practitioner_profession_and_finess_filters(directory: httpx.Client, session: dict[str, Any]) -> None:
    pracs = session["fixtures"]["practitioners"]
    doctors = search(directory, "practitioners", profession_code="10")
    assert doctors == [p for p in pracs if p["profession_code"] == "10"] and len(doctors) >= 2
    p = pracs[1]
    assert search(directory, "practitioners", finess=p["organisation"]) == [
        q for q in pracs if q["organisation"] == p["organisation"]]
    both = search(directory, "practitioners", finess=p["organisation"], profession_code=p["profession_code"],
                  name=p["family_name"])
    assert p in both
    assert search(directory, "practitioners", finess=p["organisation"], profession_code="99") == []


def test_organisations(directory: httpx.Client, session: dict[str, Any]) -> None:
    orgs = session["fixtures"]["organisations"]
    assert search(directory, "organisations") == orgs
    assert search(directory, "organisations", finess=orgs[3]["finess"]) == [orgs[3]]
    pharmacy = next(o for o in orgs if o["type_code"] == "620")
    assert pharmacy in search(directory, "organisations", name="officine lefevre")
    assert pharmacy in search(directory, "organisations", name="PHARMACIE D’OFFICINE")
    assert search(directory, "organisations", name="nowhere") == []


def test_addresses(directory: httpx.Client, session: dict[str, Any]) -> None:
    fx = session["fixtures"]
    everything = search(directory, "addresses")
    assert len(everything) == len(fx["organisations"]) + len(fx["practitioners"])
    p = fx["practitioners"][0]
    by_address = search(directory, "addresses", address=p["mss_address"].upper())
    assert by_address == [{"address": p["mss_address"], "type": "practitioner",
                           "display_name": f"{p['given_name']} {p['family_name']}", "national_id": p["national_id"],
                           "finess": p["organisation"], "active": True}]
    assert search(directory, "addresses", national_id=p["national_id"]) == by_address
    at_org = search(directory, "addresses", finess=p["organisation"])
    assert {a["address"] for a in at_org} >= {p["mss_address"],
                                              next(o["mss_address"] for o in fx["organisations"]
                                                   if o["finess"] == p["organisation"])}
    assert all(a["finess"] == p["organisation"] for a in at_org)
    assert search(directory, "addresses", address="nobody@355.mssante.test") == []


@pytest.mark.parametrize(("path", "params", "status", "code"), [
    ("/practitioners", {"nationalid": "1"}, 422, "filter-unknown"),
    ("/organisations", {"national_id": "1"}, 422, "filter-unknown"),
    ("/practitioners", {"name": "!!! ---"}, 422, "filter-invalid"),
    ("/practitioners", {"name": "x" * 201}, 422, "invalid-request"),
    ("/addresses", {"finess": ""}, 422, "invalid-request"),
    ("/nothing-here", {}, 404, "not-found"),
])
def test_bad_searches_are_problems(directory: httpx.Client, path: str, params: dict[str, str], status: int,
                                   code: str) -> None:
    r = directory.get(path, params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == code


def test_searches_need_an_access_token_of_the_session(client: httpx.Client, session: dict[str, Any],
                                                      sandbox_server: RunningSandbox) -> None:
    url = session["endpoints"]["directory"] + "/practitioners"
    r = client.get(url)
    assert (r.status_code, r.json()["code"]) == (401, "token-missing")
    assert "Bearer" in r.headers["www-authenticate"]
    r = client.get(url, headers={"Authorization": "Bearer forged"})
    assert (r.status_code, r.json()["code"]) == (401, "token-invalid")
    r = client.get(url, headers={"Authorization": f"Bearer {session['credentials']['session_token']}"})
    assert (r.status_code, r.json()["code"]) == (401, "token-wrong-kind")
    expired = secrets.token_urlsafe()
    sandbox_server.server.config.app.state.store.put_token(expired, "access", session["session_id"], {}, ttl=-1)
    r = client.get(url, headers={"Authorization": f"Bearer {expired}"})
    assert (r.status_code, r.json()["code"]) == (401, "token-expired")


def test_unavailable_fault_answers_503_n_times(admin: httpx.Client, new_session: Callable[..., dict[str, Any]],
                                               mint: Callable[..., str], client: httpx.Client) -> None:
    s = new_session(seed=5)
    r = admin.put(f"/admin/sessions/{s['session_id']}/faults", json={"directory": {"unavailable": 2}})
    assert r.status_code == 200, r.text
    auth = {"Authorization": f"Bearer {mint(s)}"}
    base = s["endpoints"]["directory"]
    for path in ("/practitioners", "/addresses"):
        r = client.get(base + path, headers=auth)
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert r.headers["content-type"] == PROBLEM and r.json()["code"] == "service-unavailable"
    assert client.get(base + "/organisations", headers=auth).status_code == 200
    assert admin.get(f"/admin/sessions/{s['session_id']}").json()["faults"] == {"directory": {"unavailable": 0}}
    trace = trace_payload(admin.get(f"/admin/sessions/{s['session_id']}/trace"))
    fault, *served = trace["exchanges"]  # the sandbox's own record of the fault set, then what it served
    assert fault["kind"] == "note" and fault["note"] == "sandbox.faults"
    assert fault["data"] == {"set": {"directory": {"unavailable": 2}}, "faults": {"directory": {"unavailable": 2}}}
    assert [x["outcome"] for x in served] == ["service-unavailable", "service-unavailable", "search-answered"]


def test_unavailable_fault_is_consumed_atomically(admin: httpx.Client, new_session: Callable[..., dict[str, Any]],
                                                  mint: Callable[..., str], sandbox_server: RunningSandbox) -> None:
    s = new_session(seed=6)
    admin.put(f"/admin/sessions/{s['session_id']}/faults", json={"directory": {"unavailable": 5}})
    auth = {"Authorization": f"Bearer {mint(s)}"}

    def one(_: int) -> int:
        with httpx.Client(timeout=30) as c:
            return c.get(s["endpoints"]["directory"] + "/organisations", headers=auth).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(one, range(14)))
    assert sorted(statuses) == [200] * 9 + [503] * 5


@settings(derandomize=True, max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=1, max_size=60))
def test_any_name_search_answers_a_list_or_a_problem(directory: httpx.Client, name: str) -> None:
    r = directory.get("/practitioners", params={"name": name})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["code"] in ("filter-invalid", "invalid-request")
        return
    wanted = normalise_name(name)
    for p in r.json():
        assert wanted in normalise_name(f"{p['family_name']} {p['given_name']}") or \
            wanted in normalise_name(f"{p['given_name']} {p['family_name']}")
