"""The staff's JSON API: review, decide, waive, revoke, reinstate with role-scoped Bearer tokens, same rules as the pages."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from conformity.agency.registry import Registry
from conformity.agency.service import accounts
from conformity.errors import InputError
from conformity.labels import verify_label
from conformity.signing import KeyRing
from tests.agency.helpers import AGENCY, Runs
from tests.agency.service_client import Service, upload


def _tokens(s: Service) -> dict[str, str]:
    with Registry(s.config.database) as reg:
        out = {}
        for login in ("alice", "bob", "dora"):
            acct = accounts.account(reg.db, login)
            assert acct is not None
            out[login] = accounts.create_token(reg.db, acct, "api")
        return out


def _as(s: Service, token: str) -> TestClient:
    c = s.client()
    c.headers["Authorization"] = f"Bearer {token}"
    return c


def test_reviewers_and_a_decider_label_revoke_and_reinstate_through_the_api(sqlite_service: Service,
                                                                            runs: Runs) -> None:
    s = sqlite_service
    tokens = _tokens(s)
    alice, bob, dora = (_as(s, tokens[n]) for n in ("alice", "bob", "dora"))
    doc = upload(s.vendor(), runs.reference)
    sub = doc["submission"]["id"]  # type: ignore[index]
    queue = alice.get("/api/v1/staff/queue").json()["queue"]
    awaiting = [a["id"] for a in next(q for q in queue if q["submission"] == sub)["awaiting"]]
    assert "SECURITY-013" in awaiting

    body = {"requirements": awaiting, "verdict": "accepted", "reason": "read: it shows what is asked"}
    r = alice.post(f"/api/v1/staff/submissions/{sub}/reviews", json=body)
    assert r.status_code == 201 and {x["id"] for x in r.json()["reviews"]} == set(awaiting)
    before = s.table("SELECT id FROM reviews")
    again = alice.post(f"/api/v1/staff/submissions/{sub}/reviews", json=body)  # her own second review: four-eyes
    assert again.status_code == 422 and "four-eyes" in again.json()["detail"]
    assert again.headers["content-type"] == "application/problem+json"
    early = dora.post(f"/api/v1/staff/submissions/{sub}/decision", json={})
    assert early.status_code == 200 and early.json()["decision"]["outcome"] == "pending"
    assert bob.post(f"/api/v1/staff/submissions/{sub}/reviews", json=body | {"reason": "confirmed"}).status_code == 201
    assert len(s.table("SELECT id FROM reviews")) == len(before) + len(awaiting)

    wrong_role = alice.post(f"/api/v1/staff/submissions/{sub}/decision", json={})
    assert wrong_role.status_code == 403 and wrong_role.json()["detail"] == "reviewer accounts may not decide"
    decided = dora.post(f"/api/v1/staff/submissions/{sub}/decision", json={})
    assert decided.status_code == 200 and decided.json()["decision"]["outcome"] == "labelled", decided.json()
    label = verify_label(decided.json()["label"], KeyRing([AGENCY.verify_key]))

    assert bob.post(f"/api/v1/staff/labels/{label.id}/revocation", json={"reason": "x"}).status_code == 403
    r = dora.post(f"/api/v1/staff/labels/{label.id}/revocation", json={"reason": "field report: TLS off"})
    assert r.status_code == 200 and r.json()["labels"] == [label.id]
    assert "field report: TLS off" in s.client().get("/revocations").text
    twice = dora.post(f"/api/v1/staff/labels/{label.id}/revocation", json={"reason": "again"})
    assert twice.status_code == 422
    r = dora.post(f"/api/v1/staff/labels/{label.id}/reinstatement", json={"reason": "fixed in 1.0.1"})
    assert r.status_code == 200 and r.json()["action"] == "reinstate"
    assert dora.post("/api/v1/staff/labels/L-NOPE/revocation", json={"reason": "x"}).status_code == 404
    actions = [a for (a,) in s.table("SELECT action FROM audit WHERE actor IN ('alice', 'bob', 'dora') ORDER BY id")]
    assert actions.count("review-accepted") == 2  # one entry per call, naming every requirement
    assert {"review-refused", "decide", "revoke", "revoke-refused", "reinstate"} <= set(actions)


def test_tokens_are_scoped_by_role_and_bad_calls_change_nothing(sqlite_service: Service, runs: Runs) -> None:
    s = sqlite_service
    tokens = _tokens(s)
    doc = upload(s.vendor(), runs.reference)
    sub = doc["submission"]["id"]  # type: ignore[index]
    body = {"requirements": ["SECURITY-013"], "verdict": "accepted", "reason": "fine"}
    no_token = s.client().post(f"/api/v1/staff/submissions/{sub}/reviews", json=body)
    assert no_token.status_code == 401 and "Bearer" in no_token.headers["www-authenticate"]
    assert _as(s, "usn_forged").post(f"/api/v1/staff/submissions/{sub}/reviews", json=body).status_code == 401
    for anonymous in (s.client(), _as(s, "usn_forged")):  # the token before the body: nothing learnt of its shape
        r = anonymous.post(f"/api/v1/staff/submissions/{sub}/reviews", json={"verdict": "maybe"})
        assert r.status_code == 401 and "requirements" not in r.text, r.text
    vendor = s.vendor().post(f"/api/v1/staff/submissions/{sub}/reviews", json=body)
    assert vendor.status_code == 403  # a vendor reviews nothing
    staff_as_vendor = _as(s, tokens["alice"]).get("/api/v1/submissions")
    assert staff_as_vendor.status_code == 403  # a staff token is not a vendor's
    bad = _as(s, tokens["alice"]).post(f"/api/v1/staff/submissions/{sub}/reviews",
                                       json={"requirements": [], "verdict": "maybe", "reason": ""})
    assert bad.status_code == 422 and bad.json()["type"].endswith("invalid-request")
    waiver = _as(s, tokens["dora"]).post(f"/api/v1/staff/submissions/{sub}/decision", json={"waive": ["DOCSHARE-001"]})
    assert waiver.status_code == 422 and "why" in waiver.json()["detail"]
    assert s.table("SELECT count(*) FROM reviews") == [(0,)]
    with Registry(s.config.database) as reg:
        alice = accounts.account(reg.db, "alice")
        assert alice is not None
        with pytest.raises(InputError, match="scopes are among review"):
            accounts.create_token(reg.db, alice, "too much", ("decide",))
        review_only = accounts.create_token(reg.db, accounts.account(reg.db, "dora"), "x")  # type: ignore[arg-type]
    assert _as(s, review_only).post(f"/api/v1/staff/submissions/{sub}/reviews", json=body).status_code == 403
    paths = s.client().get("/openapi.json").json()["paths"]
    assert {"/api/v1/staff/submissions/{ident}/reviews", "/api/v1/staff/submissions/{ident}/decision",
            "/api/v1/staff/labels/{label_id}/revocation", "/api/v1/staff/labels/{label_id}/reinstatement",
            "/api/v1/witnessed-runs"} <= set(paths)


def test_a_staff_body_with_a_name_twice_is_refused_not_read_as_one_of_its_values(sqlite_service: Service,
                                                                                 runs: Runs) -> None:
    """Two readers of ``{"verdict": "accepted", "verdict": "rejected"}`` may take either: 400, nothing recorded."""
    s = sqlite_service
    alice = _as(s, _tokens(s)["alice"])
    sub = upload(s.vendor(), runs.reference)["submission"]["id"]  # type: ignore[index]
    before = s.table("SELECT id FROM reviews")
    body = b'{"requirements": ["SECURITY-013"], "verdict": "rejected", "verdict": "accepted", "reason": "r"}'
    r = alice.post(f"/api/v1/staff/submissions/{sub}/reviews", content=body,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert "'verdict' appears twice" in " ".join(r.json()["problems"]), r.json()
    assert s.table("SELECT id FROM reviews") == before
    deep = alice.post(f"/api/v1/staff/submissions/{sub}/reviews", content=b"[" * 1000 + b"]" * 1000,
                      headers={"Content-Type": "application/json"})
    assert deep.status_code == 400 and "nested deeper" in " ".join(deep.json()["problems"]), deep.json()
    ok = alice.post(f"/api/v1/staff/submissions/{sub}/reviews", json={"requirements": ["SECURITY-013"],
                                                                       "verdict": "accepted", "reason": "read"})
    assert ok.status_code == 201, ok.json()


def test_a_refusal_names_no_file_of_the_agencys_server(sqlite_service: Service) -> None:
    """A submission or label that is not there was answered, on the pages and the staff API, with the registry's
    path on the agency's server ("/srv/agency/registry.sqlite3: no submission or label …"): how the server is laid
    out is nobody's business outside it. The answer says what is missing, and nothing else changed."""
    s = sqlite_service
    tokens = _tokens(s)
    alice, alice_csrf = s.staff("alice")
    dora, dora_csrf = s.staff("dora")
    as_json = {"Accept": "application/json"}
    review = {"requirements": ["SECURITY-013"], "verdict": "accepted", "reason": "read"}
    answers = {
        "page": alice.get("/staff/submissions/sub_nothere"),
        "evidence": alice.get(f"/staff/evidence/sub_nothere/{'0' * 64}", headers=as_json),
        "review form": alice.post("/staff/submissions/sub_nothere/review", headers=as_json,
                                  data={"csrf": alice_csrf, "requirement": "SECURITY-013", "verdict": "accepted",
                                        "reason": "read"}),
        "decide form": dora.post("/staff/submissions/sub_nothere/decide", headers=as_json, data={"csrf": dora_csrf}),
        "revoke form": dora.post("/staff/labels/lbl_nothere/revoke", headers=as_json,
                                 data={"csrf": dora_csrf, "reason": "field report"}),
        "review API": _as(s, tokens["alice"]).post("/api/v1/staff/submissions/sub_nothere/reviews", json=review),
        "decide API": _as(s, tokens["dora"]).post("/api/v1/staff/submissions/sub_nothere/decision", json={}),
    }
    for what, r in answers.items():
        assert r.status_code in (404, 422), (what, r.status_code, r.text)
        assert "nothere" in r.text and "registry.sqlite3" not in r.text and str(s.config.data) not in r.text, \
            (what, r.text)
    assert s.table("SELECT count(*) FROM reviews") == [(0,)] and s.table("SELECT count(*) FROM submissions") == [(0,)]
