"""``usine agency serve``: the real app (in process) on SQLite and PostgreSQL, as vendors, reviewers and the public use it."""

from __future__ import annotations

import datetime as dt
import json
import re
import stat
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conformity.agency.registry import Registry
from conformity.agency.service import accounts
from conformity.labels import verify_label, verify_revocations
from conformity.signing import KeyRing
from tests.agency.helpers import AGENCY, Runs, members, raw_zip
from tests.agency.service_client import PASSWORD, VENDOR, MiB, Service, upload


def review_all(c: TestClient, csrf: str, sub: str, requirements: list[str], reason: str) -> None:
    for req in requirements:
        r = c.post(f"/staff/submissions/{sub}/review",
                   data={"csrf": csrf, "requirement": req, "verdict": "accepted", "reason": reason})
        assert r.status_code == 303, r.text


def test_vendor_reviewers_decider_and_public_through_the_service(service: Service, runs: Runs) -> None:
    """The whole flow on each engine: upload, two reviewers (four-eyes), decide, public registry, revoke, events."""
    doc = upload(service.vendor(), runs.reference)
    assert doc["state"] == "verified" and doc["status"] == "awaiting-review", doc
    awaiting = [a["id"] for a in doc["decision"]["awaiting_review"]]  # type: ignore[index]
    sub = doc["submission"]["id"]  # type: ignore[index]
    assert "SECURITY-013" in awaiting
    # the vendor sees what awaits the agency's review, on the API and on its submission's page
    mine = service.vendor().get(f"/api/v1/submissions/{doc['id']}").json()
    assert [a["id"] for a in mine["current_decision"]["awaiting_review"]] == awaiting, mine
    web = service.client()
    form = web.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    assert web.post("/login", data={"login": "ref", "password": PASSWORD, "csrf": csrf}).status_code == 303
    page = web.get(f"/vendor/submissions/{doc['id']}")
    assert page.status_code == 200 and "Awaiting the agency's review" in page.text, page.text
    assert all(req in page.text for req in awaiting)

    alice, alice_csrf = service.staff("alice")
    queue = alice.get("/staff")
    assert sub in queue.text and "awaiting review" in queue.text
    page = alice.get(f"/staff/submissions/{sub}")
    assert page.status_code == 200 and "hds-certificate.pdf" in page.text and "Record review of SECURITY-013" in page.text
    # what the decision will say besides the reviews, before anyone reviews: the run's longest scenario, its notes
    # (this run is after 2026-W1's submission deadline)
    assert re.search(r'<p id="longest">Longest scenario: [a-z_.]+, \d+ s from its session', page.text), page.text
    assert re.search(r'<ul id="warnings"><li>note: the run \([^)]+\) is after the wave&#39;s submission deadline',
                     page.text), page.text
    review_all(alice, alice_csrf, sub, awaiting, "read: the document shows what is asked")
    assert "awaits a second reviewer (not you)" in alice.get(f"/staff/submissions/{sub}").text
    bob, bob_csrf = service.staff("bob")
    review_all(bob, bob_csrf, sub, awaiting, "read again: confirmed")

    dora, dora_csrf = service.staff("dora")
    r = dora.post(f"/staff/submissions/{sub}/decide", data={"csrf": dora_csrf})
    assert r.status_code == 303 and "decision%3A+labelled" in r.headers["location"], r.headers
    assert '<p role="status" class="done">decision: labelled' in dora.get(r.headers["location"]).text
    mine = service.vendor().get(f"/api/v1/submissions/{doc['id']}").json()
    assert mine["status"] == "labelled" and {r["reviewer"] for r in mine["reviews"]} == {"Alice (alice)", "Bob (bob)"}
    signed = service.vendor().get(mine["label"])
    assert signed.headers["content-type"] == "application/jose+json"
    label = verify_label(signed.json(), KeyRing([AGENCY.verify_key]))
    first = {r["id"]: r for r in label.doc["requirements_reviewed"]}["SECURITY-013"]
    assert first["reviewer"] == "Bob (bob)" and first["first_review"]["reviewer"] == "Alice (alice)"

    public = service.client()
    listed = public.get("/registry", params={"vendor": VENDOR, "state": "valid"})
    assert label.id in listed.text and "RefApp" in listed.text
    assert label.id not in public.get("/registry", params={"state": "revoked"}).text
    rows = public.get("/api/v1/registry.csv", params={"wave": "2026-W1"}).text.splitlines()
    assert rows[0].startswith("wave,category,label_id") and label.id in rows[1]
    assert public.get(f"/labels/{label.id}").status_code == 200

    r = dora.post(f"/staff/labels/{label.id}/revoke", data={"csrf": dora_csrf, "reason": "field report: TLS off"})
    assert r.status_code == 303
    assert "revoked" in public.get(f"/labels/{label.id}").text and "field report: TLS off" in public.get("/revocations").text
    revocations = verify_revocations(public.get("/api/v1/revocations").json(), KeyRing([AGENCY.verify_key]))
    assert revocations.revoked_at(label.id) is not None and not revocations.stale_at(dt.datetime.now(dt.UTC))
    events = public.get("/api/v1/events", params={"after": 0}).json()
    assert [e["type"] for e in events["events"]] == ["org.usine.label.issued", "org.usine.label.revoked"]
    assert public.get("/api/v1/events", params={"after": events["cursor"]}).json()["events"] == []
    actions = [a for (a,) in service.table("SELECT action FROM audit ORDER BY id")]
    assert {"upload", "upload-verified", "login", "review-accepted", "decide", "revoke"} <= set(actions)
    assert actions.count("review-accepted") == 2 * len(awaiting)


@pytest.mark.parametrize("after", [str(2**63), str(10**30), "-1", "x"])
def test_an_events_cursor_out_of_range_is_a_problem_not_a_500(sqlite_service: Service, after: str) -> None:
    """2**63 reached SQLite as an integer it cannot hold: a 500 in plain text."""
    r = sqlite_service.client().get("/api/v1/events", params={"after": after})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text


def test_openapi_and_public_pages(sqlite_service: Service) -> None:
    c = sqlite_service.client()
    spec = c.get("/openapi.json").json()
    assert {"/api/v1/submissions", "/api/v1/events", "/api/v1/revocations", "/api/v1/registry"} <= set(spec["paths"])
    for path in ("/", "/registry", "/waves", "/waves/2026-W1/HOSPITAL", "/progress/2026-W1", "/revocations"):
        r = c.get(path)
        assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff", path
        assert "script-src 'none'" in r.headers["content-security-policy"]
    assert c.get("/api/v1/schemas/registry-export").json()["$schema"]
    missing = c.get("/labels/lbl_nothere00", headers={"Accept": "application/json"})
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


# ---------------------------------------------------------------------------------------------- bad input
def _nothing_recorded(s: Service) -> None:
    assert s.table("SELECT id FROM uploads") == [] and s.table("SELECT id FROM submissions") == []
    assert not [p for p in s.config.uploads.glob("*")] if s.config.uploads.exists() else True


def test_uploads_without_a_valid_token_oversized_or_not_a_zip_are_refused(sqlite_service: Service, runs: Runs) -> None:
    s = sqlite_service
    anonymous = s.client().post("/api/v1/submissions", content=b"PK\x03\x04")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert s.vendor("usn_forged").post("/api/v1/submissions", content=b"PK\x03\x04").status_code == 401
    with Registry(s.config.database) as reg:
        read_only = accounts.create_token(reg.db, accounts.account(reg.db, "ref"), "ro", ("read",))  # type: ignore[arg-type]
    assert s.vendor(read_only).post("/api/v1/submissions", content=b"PK\x03\x04").json()["status"] == 403
    big = s.vendor().post("/api/v1/submissions", content=b"PK\x03\x04" + b"\0" * (3 * 1024 * 1024))
    assert big.status_code == 413 and big.json()["max_bytes"] == 2 * 1024 * 1024

    def endless() -> Iterator[bytes]:  # no Content-Length: stopped once past the limit, while streaming
        yield b"PK\x03\x04"
        for _ in range(40):
            yield b"\0" * (128 * 1024)

    assert s.vendor().post("/api/v1/submissions", content=endless()).status_code == 413
    html = s.vendor().post("/api/v1/submissions", content=b"<html><script>alert(1)</script>")
    assert html.status_code == 415 and html.json()["type"].endswith(":not-a-zip")
    assert s.vendor().post("/api/v1/submissions", content=b"").status_code == 400
    _nothing_recorded(s)


def test_hostile_bundles_are_refused_with_findings_and_nothing_recorded(sqlite_service: Service, tmp_path: Path) -> None:
    s = sqlite_service
    traversal = raw_zip(tmp_path / "evil.zip", [("../../etc/passwd", b"root"), ("manifest.json", b"{}")])
    doc = upload(s.vendor(), traversal)
    assert doc["state"] == "refused" and doc["status"] == "refused" and doc["findings"], doc
    bomb = raw_zip(tmp_path / "bomb.zip", [("manifest.json", b"{}"), ("traces/a.json", b"\0" * (10 * MiB))])
    assert bomb.stat().st_size < 2 * MiB  # small on the wire, large once inflated
    doc = upload(s.vendor(), bomb)
    assert doc["state"] == "refused" and any("large" in f or "ratio" in f or "bytes" in f for f in doc["findings"]), \
        doc["findings"]
    assert s.table("SELECT id FROM submissions") == []
    fake = tmp_path / "my-run.zip"
    fake.write_bytes(b"PK\x03\x04 but not a zip at all")
    doc = upload(s.vendor(), fake)
    assert doc["state"] == "refused" and doc["findings"], doc
    text = json.dumps(doc)  # the finding names the vendor's upload, never the agency's folders
    assert "my-run.zip: not a zip archive" in text and str(s.config.data) not in text, text


def test_a_vendor_sees_only_its_own_and_submits_only_its_own_runs(sqlite_service: Service, runs: Runs) -> None:
    s = sqlite_service
    theirs = upload(s.vendor(s.other_token), runs.reference)  # another vendor's run, uploaded by acme
    assert theirs["state"] == "refused" and "a vendor submits its own runs only" in theirs["findings"][0]  # type: ignore[index]
    assert s.table("SELECT id FROM submissions") == []
    mine = upload(s.vendor(), runs.defective)
    assert mine["status"] == "refused" and mine["decision"]["failed_requirements"][0]["id"] == "PRACAUTH-004"  # type: ignore[index]
    stolen = s.vendor(s.other_token).get(f"/api/v1/submissions/{mine['id']}")
    assert stolen.status_code == 404 and stolen.headers["content-type"] == "application/problem+json"
    assert "no submission" in stolen.json()["detail"]
    assert [u["id"] for u in s.vendor(s.other_token).get("/api/v1/submissions").json()["submissions"]] == [theirs["id"]]


def test_four_eyes_csrf_and_expired_sessions_change_nothing(sqlite_service: Service, runs: Runs) -> None:
    s = sqlite_service
    doc = upload(s.vendor(), runs.reference)
    sub = doc["submission"]["id"]  # type: ignore[index]
    alice, csrf = s.staff("alice")
    review_all(alice, csrf, sub, ["SECURITY-013"], "HDS certificate, scope 1-6")
    before = s.table("SELECT id FROM reviews")
    again = alice.post(f"/staff/submissions/{sub}/review", headers={"Accept": "application/json"},
                       data={"csrf": csrf, "requirement": "SECURITY-013", "verdict": "accepted", "reason": "still fine"})
    assert again.status_code == 422 and "four-eyes" in again.json()["detail"]
    replay = alice.post(f"/staff/submissions/{sub}/review", headers={"Accept": "application/json"},
                        data={"requirement": "SECURITY-013", "verdict": "rejected", "reason": "no token"})
    assert replay.status_code == 403 and replay.json()["type"].endswith(":csrf")
    bob, bob_csrf = s.staff("bob")
    forged = bob.post(f"/staff/submissions/{sub}/review", headers={"Accept": "application/json"},
                      data={"csrf": csrf, "requirement": "SECURITY-013", "verdict": "accepted", "reason": "alice's token"})
    assert forged.status_code == 403  # another session's token is not this session's
    assert s.table("SELECT id FROM reviews") == before
    with Registry(s.config.database) as reg, reg.write() as db:
        db.execute("UPDATE web_sessions SET expires = ?", ("2000-01-01T00:00:00Z",))
    expired = bob.post(f"/staff/submissions/{sub}/review",
                       data={"csrf": bob_csrf, "requirement": "SECURITY-013", "verdict": "accepted", "reason": "late"})
    assert expired.status_code == 303 and expired.headers["location"].startswith("/login")
    assert "session has expired" in bob.get("/login").text
    assert s.table("SELECT id FROM reviews") == before
    as_reviewer = alice.post(f"/staff/submissions/{sub}/decide", headers={"Accept": "application/json"},
                             data={"csrf": csrf})
    assert as_reviewer.status_code == 401  # alice's session expired too (a JSON client is told, not redirected)


def test_login_is_throttled_and_evidence_is_served_safely(sqlite_service: Service, runs: Runs) -> None:
    s = sqlite_service
    doc = upload(s.vendor(), runs.reference)
    sub = doc["submission"]["id"]  # type: ignore[index]
    alice, _ = s.staff("alice")
    page = alice.get(f"/staff/submissions/{sub}").text
    pdf = re.search(r'<iframe class="evidence" loading="lazy" src="(/staff/evidence/[^"]+)"', page).group(1)  # type: ignore[union-attr]
    r = alice.get(pdf)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["content-security-policy"].startswith("sandbox")
    assert r.headers["content-disposition"].startswith("inline; filename=")
    assert s.client().get(pdf).status_code == 303  # not signed in: to the sign-in page
    assert s.vendor().get(pdf, headers={"Accept": "application/json"}).status_code in (401, 403)

    c = s.client()
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)  # type: ignore[union-attr]
    for _ in range(5):
        assert c.post("/login", data={"login": "bob", "password": "wrong password!", "csrf": csrf}).status_code == 401
    r = c.post("/login", data={"login": "bob", "password": PASSWORD, "csrf": csrf})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # even the right password waits
    assert c.post("/login", data={"login": "alice", "password": PASSWORD}).status_code == 403  # no CSRF token
    hashes = s.table("SELECT password_hash FROM accounts WHERE role != 'vendor'")
    assert all(str(h).startswith("$argon2id$") for (h,) in hashes)
    assert "login-throttled" in [a for (a,) in s.table("SELECT action FROM audit")]
    with pytest.raises(Exception, match="append-only"):
        with Registry(s.config.database) as reg, reg.write() as db:
            db.execute("DELETE FROM audit")


def test_the_same_run_repackaged_through_the_service_gets_its_decision_and_nothing_new(
        sqlite_service: Service, runs: Runs, tmp_path: Path) -> None:
    """Issue 9, attack 1, as vendors submit (the upload API): a repackaged run is the same submission, labelled once;
    once its label is revoked, a repackaging is refused as revoked and issues nothing. (Junk in front of the zip is
    refused at intake here: an upload must start like a zip.)"""
    s = sqlite_service
    reordered = raw_zip(tmp_path / "reordered.zip", sorted(members(runs.reference).items(), reverse=True))
    stored = raw_zip(tmp_path / "stored.zip", list(members(runs.reference).items()), stored=True,
                     comment=b"repackaged by a reseller")
    first = upload(s.vendor(), runs.reference)
    sub = first["submission"]["id"]  # type: ignore[index]
    awaiting = [a["id"] for a in first["decision"]["awaiting_review"]]  # type: ignore[index]
    again = upload(s.vendor(), reordered)
    assert again["submission"]["id"] == sub and again["status"] == "awaiting-review", again  # type: ignore[index]
    for login in ("alice", "bob"):
        c, csrf = s.staff(login)
        review_all(c, csrf, sub, awaiting, f"read by {login}")
    dora, dora_csrf = s.staff("dora")
    assert dora.post(f"/staff/submissions/{sub}/decide", data={"csrf": dora_csrf}).status_code == 303
    labelled = s.vendor().get(f"/api/v1/submissions/{first['id']}").json()
    assert labelled["status"] == "labelled", labelled

    repackaged = upload(s.vendor(), stored)
    assert repackaged["submission"]["id"] == sub and repackaged["status"] == "labelled", repackaged  # type: ignore[index]
    assert repackaged["label"] == labelled["label"]
    assert s.table("SELECT count(*) FROM labels") == [(1,)] and s.table("SELECT count(*) FROM submissions") == [(1,)]

    label_id = labelled["label"].rsplit("/", 1)[-1]
    assert dora.post(f"/staff/labels/{label_id}/revoke", data={"csrf": dora_csrf, "reason": "TLS off"}).status_code == 303
    after = upload(s.vendor(), reordered)
    assert after["status"] == "revoked", after
    assert s.table("SELECT count(*) FROM labels") == [(1,)] and s.table("SELECT count(*) FROM submissions") == [(1,)]
    events = s.client().get("/api/v1/events", params={"after": 0}).json()["events"]
    assert [e["type"] for e in events] == ["org.usine.label.issued", "org.usine.label.revoked"]


def test_the_api_changes_nothing_with_only_the_browsers_session(sqlite_service: Service, runs: Runs) -> None:
    """A signed-in vendor's cookie went with a POST any page of the same site made (a no-cors fetch of a zip): the
    upload was recorded. The API reads with the session; it changes things only with an API token."""
    c = sqlite_service.client()
    form = c.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    assert c.post("/login", data={"login": "ref", "password": PASSWORD, "csrf": csrf, "next": "/vendor"}).status_code == 303
    before = sqlite_service.table("SELECT id FROM uploads")
    assert c.get("/api/v1/submissions").status_code == 200  # the vendor's pages read the API with the session
    r = c.post("/api/v1/submissions", params={"name": "b.zip"}, content=runs.reference.read_bytes(),
               headers={"Content-Type": "text/plain"})
    assert r.status_code == 401 and "API token" in r.json()["detail"], r.text
    assert sqlite_service.table("SELECT id FROM uploads") == before


def test_no_page_loads_a_third_partys_script(sqlite_service: Service) -> None:
    """Swagger UI and ReDoc load their scripts from a CDN into the agency's origin, where staff sessions live."""
    c = sqlite_service.client()
    for path in ("/docs", "/redoc"):
        assert c.get(path).status_code == 404, path
    assert "cdn." not in c.get("/").text and c.get("/openapi.json").status_code == 200


def _directory_bomb(path: Path, entries: int, declared: int) -> Path:
    """A zip of one empty member whose central directory names it ``entries`` times (47 bytes each); its end record
    declares ``declared`` entries (a reader that trusts the directory's size, as Python's does, parses them all)."""
    name = b"a"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
    record = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0,
                         0) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, declared, declared, len(record) * entries, len(local), 0)
    path.write_bytes(local + record * entries + end)
    return path


@pytest.mark.parametrize("declared", ["as-many", "one"])
def test_a_zip_whose_directory_is_too_large_is_refused_before_it_is_parsed(
        sqlite_service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, declared: str) -> None:
    """A 61 MB upload (under the 64 MB limit) of 1.3 million directory entries held a verifier for half a minute and
    half a gigabyte before it was refused for having more than 512 members: Python's zip reader builds every entry
    first, and trusts the directory's size over the count the end record declares. The directory is now judged by
    what the end record declares (entries and size), before one entry is parsed; here 40,000 entries in 2 MB."""
    s = sqlite_service
    bomb = _directory_bomb(tmp_path / "directory-bomb.zip", 40_000, 40_000 if declared == "as-many" else 1)
    assert bomb.stat().st_size < s.config.max_upload
    built: list[object] = []
    real_init = zipfile.ZipFile.__init__

    def spy(self: zipfile.ZipFile, file: object, *a: object, **k: object) -> None:
        built.append(file)
        real_init(self, file, *a, **k)  # type: ignore[arg-type]  # a spy standing in for ZipFile.__init__

    monkeypatch.setattr(zipfile.ZipFile, "__init__", spy)
    doc = upload(s.vendor(), bomb)
    assert doc["state"] == "refused" and built == [], (doc, built)
    finding = doc["findings"][0]  # type: ignore[index]
    assert "nothing read" in finding, finding
    assert ("40000 members" in finding) if declared == "as-many" else ("directory of" in finding), finding
    assert s.table("SELECT id FROM submissions") == []


def test_a_finding_names_the_vendors_file_not_the_agencys_copy_of_it(sqlite_service: Service, runs: Runs,
                                                                     tmp_path: Path) -> None:
    """A member refused in an upload was named in the agency's copy of the bundle ("upl_1f….zip at 'evidence/x':
    symbolic link"), a name the vendor never gave, in its findings and in the decision it reads; the vendor's own
    file name is what it reads now."""
    s = sqlite_service
    link = zipfile.ZipInfo("evidence/x")
    link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
    bundle = raw_zip(tmp_path / "release-1.2.zip", [*members(runs.reference).items(), (link, b"/etc/passwd")])
    doc = upload(s.vendor(), bundle)
    assert doc["state"] == "refused" and "release-1.2.zip at 'evidence/x': symbolic link" in doc["findings"], doc
    shown = s.vendor().get(f"/api/v1/submissions/{doc['id']}").json()
    assert "upl_" not in json.dumps({k: v for k, v in shown.items() if k != "id"}), shown
