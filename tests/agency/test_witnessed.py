"""Witnessed runs: the agency runs the harness itself against a vendor's driver served over HTTPS.

Real parts: the reference vendor's driver (and a defective one) behind the HTTPS JSON-RPC bridge with a
certificate of the sandbox's test CA, the agency's own sandbox in this process (the one whose trace key
the agency trusts), the service app; the run's bundle goes through the upload's verification and decision.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformity.agency.registry import Registry
from conformity.agency.service import uploads
from conformity.agency.service.config import WitnessConfig
from conformity.agency.service.witnessed import AddressRefused, _store_evidence, check_endpoint, permitted_address
from conformity.catalog import Catalog
from conformity.driverkit.http_bridge import make_server
from conformity.harness.sandbox_access import SandboxAccess, start_local
from conformity.harness.vendor import load_vendor
from conformity.http_problems import HTTPProblem
from tests.agency.helpers import CATEGORY, DEFECT, DEFECT_FAILS, VENDORS, WAVE, Runs
from tests.agency.service_client import PASSWORD, Service, make_service

REFERENCE = VENDORS / "reference" / "vendor.toml"


@pytest.fixture(scope="module")
def agency_sandbox(runs: Runs) -> Iterator[SandboxAccess]:
    """The agency's sandbox: the session's sandbox data (the trace key the agency trusts), with its test PKI."""
    with start_local(runs.root / "sandbox") as access:
        yield access


def _serve(manifest: Path, pki: Path) -> Iterator[str]:
    server = make_server(load_vendor(manifest).driver, "127.0.0.1", 0, str(pki / "server.pem"),
                                 str(pki / "server.key"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_port}/rpc"
    finally:
        server.shutdown()
        server.server_close()
        server.close_drivers()


@pytest.fixture
def witness_service(runs: Runs, catalog: Catalog, home: Path, tmp_path: Path,
                    agency_sandbox: SandboxAccess) -> Iterator[Service]:
    pki = runs.root / "sandbox" / "pki"
    s = make_service(tmp_path / "registry.sqlite3", runs, catalog, home, tmp_path,
                     witness=WitnessConfig(sandbox=agency_sandbox, driver_ca=pki / "ca.pem", allow_private=True,
                                           call_timeout=30))
    yield s
    s.config.database.dispose()


def _ask(s: Service, url: str, evidence: dict[str, Path] | None = None, token: str | None = None,
         **fields: str) -> object:
    data = {"wave": WAVE, "category": CATEGORY, "driver_url": url, "software": "RefApp", "version": "1.0.0",
            "registration_id": "REG-REF-0001", "software_id": "usine-reference.refapp"} | fields
    files = [(f"evidence.{req}", (p.name, p.read_bytes())) for req, p in (evidence or {}).items()]
    return s.vendor(token).post("/api/v1/witnessed-runs", data=data, files=files or None)


def _evidence() -> dict[str, Path]:
    return {req: path for req, path in load_vendor(REFERENCE).evidence}


def test_a_witnessed_run_of_the_reference_vendor_is_made_verified_and_awaits_review(
        witness_service: Service, runs: Runs, fsynced: list[tuple[str, int]]) -> None:
    s = witness_service
    served = _serve(REFERENCE, runs.root / "sandbox" / "pki")
    url = next(served)
    try:
        r = _ask(s, url, _evidence())
        assert r.status_code == 202, r.text  # type: ignore[attr-defined]
        doc = r.json()  # type: ignore[attr-defined]
        assert doc["kind"] == "witnessed" and doc["witnessed"]["request"]["driver_url"] == url
        mine = s.vendor().get(f"/api/v1/submissions/{doc['id']}").json()
    finally:
        next(served, None)
    assert mine["state"] == "verified", mine["findings"]
    assert mine["status"] == "awaiting-review" and mine["decision"]["verified"] is True
    assert mine["witnessed"]["progress"].startswith("finished:")
    assert not (s.config.uploads / f"{doc['id']}.evidence").exists()  # the bundle carries it: not kept for ever
    sub = mine["submission"]["id"]
    rows = s.table(f"SELECT kind, vendor_id, submission FROM uploads WHERE id = '{doc['id']}'")
    assert rows == [("witnessed", "usine-reference", sub)]
    # its bundle, made and kept by the agency, counts against the vendor's storage like an upload's
    kept = (s.config.uploads / f"{doc['id']}.zip").stat().st_size
    assert s.table(f"SELECT bytes FROM uploads WHERE id = '{doc['id']}'") == [(kept,)]
    # on disk, and its name in the uploads folder, before the run is verified and recorded (a power cut keeps it)
    stored = s.config.uploads / f"{doc['id']}.zip"
    assert ("file", stored.stat().st_ino) in fsynced
    assert ("dir", s.config.uploads.stat().st_ino) in fsynced[fsynced.index(("file", stored.stat().st_ino)):]
    with Registry(s.config.database) as reg:
        assert uploads.kept_bytes(s.config, "usine-reference", reg.db) == kept
    # the evidence was made on the agency's side: the submission's evidence files are the ones the vendor sent
    evidenced = {r[0] for r in s.table(f"SELECT requirement FROM evidence WHERE submission = '{sub}'")}
    assert evidenced == set(_evidence())
    # the reviewers see it in their queue like an upload
    c, _ = s.staff("alice")
    assert sub in c.get("/staff").text
    assert 'id="witnessed"' in c.get(f"/staff/submissions/{sub}").text  # the reviewers see who made the evidence
    audit = [r[0] for r in s.table(f"SELECT action FROM audit WHERE subject = '{doc['id']}' ORDER BY id")]
    assert audit == ["witness-request", "upload-verified"]


def test_a_witnessed_requests_evidence_is_kept_private_and_durable_before_its_run_is_queued(
        tmp_path: Path, fsynced: list[tuple[str, int]]) -> None:
    """The run is queued in the registry once the evidence is kept: a power cut after that keeps every file, its
    requirement's folder and the request's folder in the uploads folder (each fsync'd), each file 0600."""
    uploads_folder = tmp_path / "uploads"
    request = uploads_folder / "w-1.evidence"
    request.mkdir(parents=True)
    kept = _store_evidence(request, [("SECURITY-013", "audit.pdf", b"%PDF-1.4 one\n%%EOF\n"),
                                     ("DOCSHARE-007", "../../notes.txt", b"reviewed")])
    assert [(req, p.relative_to(request).as_posix()) for req, p in kept] == [
        ("SECURITY-013", "SECURITY-013/audit.pdf"), ("DOCSHARE-007", "DOCSHARE-007/notes.txt")]
    for _, path in kept:
        assert path.stat().st_mode & 0o777 == 0o600
        assert ("file", path.stat().st_ino) in fsynced and ("dir", path.parent.stat().st_ino) in fsynced
    assert ("dir", request.stat().st_ino) in fsynced and ("dir", uploads_folder.stat().st_ino) in fsynced
    assert sorted(p.name for p in request.rglob("*")) == ["DOCSHARE-007", "SECURITY-013", "audit.pdf", "notes.txt"]


def test_a_defective_vendors_witnessed_run_is_refused_for_its_requirement(witness_service: Service,
                                                                          runs: Runs) -> None:
    s = witness_service
    served = _serve(VENDORS / "defective" / DEFECT / "vendor.toml", runs.root / "sandbox" / "pki")
    url = next(served)
    try:
        r = _ask(s, url, _evidence())
        assert r.status_code == 202, r.text  # type: ignore[attr-defined]
        mine = s.vendor().get(f"/api/v1/submissions/{r.json()['id']}").json()  # type: ignore[attr-defined]
    finally:
        next(served, None)
    assert mine["state"] == "verified" and mine["status"] == "refused", mine
    assert [f["id"] for f in mine["decision"]["failed_requirements"]] == [DEFECT_FAILS]


def test_endpoints_not_https_or_badly_certified_are_refused_and_nothing_is_queued(
        witness_service: Service, agency_sandbox: SandboxAccess) -> None:
    s = witness_service
    r = _ask(s, "http://127.0.0.1:9/rpc")
    assert r.status_code == 422 and r.json()["type"].endswith("driver-not-https")  # type: ignore[attr-defined]
    assert r.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    bad = agency_sandbox.bad_listeners
    tried = [name for name in ("self_signed", "untrusted_root", "expired", "wrong_host") if name in bad]
    assert tried, bad
    for listener in tried:
        r = _ask(s, bad[listener].replace("localhost", "127.0.0.1") + "/rpc")
        body = r.json()  # type: ignore[attr-defined]
        assert r.status_code == 422 and body["type"].endswith("driver-certificate-refused"), (listener, body)  # type: ignore[attr-defined]
    r = _ask(s, "https://127.0.0.1:9/rpc")  # nothing listens there
    assert r.status_code == 422 and r.json()["type"].endswith("driver-unreachable")  # type: ignore[attr-defined]
    r = _ask(s, "https://127.0.0.1:9/rpc", token="usn_not-a-token")
    assert r.status_code == 401  # type: ignore[attr-defined]
    assert s.table("SELECT count(*) FROM uploads") == [(0,)]


def test_bad_requests_and_bad_evidence_are_refused_with_every_problem(witness_service: Service,
                                                                     tmp_path: Path) -> None:
    s = witness_service
    r = _ask(s, "https://127.0.0.1:9/rpc", wave="1999-W9", version="1 0")
    problems = r.json()["problems"]  # type: ignore[attr-defined]
    assert r.status_code == 422 and any("wave" in p for p in problems) and any("version" in p for p in problems)  # type: ignore[attr-defined]
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ\x90\x00" + bytes(200))
    r = _ask(s, "https://127.0.0.1:9/rpc", {"SECURITY-013": exe})
    assert r.status_code == 422 and r.json()["type"].endswith("invalid-evidence"), r.text  # type: ignore[attr-defined]
    assert s.table("SELECT count(*) FROM uploads") == [(0,)]
    assert not list((s.config.uploads).glob("*.evidence")) if s.config.uploads.exists() else True


@pytest.mark.parametrize("software_id,seed", [("dossierplus.dpi", "0"), ("usine-reference", "0"),
                                              ("usine-referencex.app", "0"), ("usine-reference.refapp", "²"),
                                              ("usine-reference.refapp.", "0"), ("usine-reference..refapp", "0"),
                                              ("Usine-Reference.RefApp", "0")])
def test_another_vendors_software_id_or_an_odd_seed_is_refused_and_nothing_queued(
        witness_service: Service, software_id: str, seed: str) -> None:
    """A vendor naming another vendor's software id was labelled for it, and that label then stood in the other
    vendor's way (its own run 'already labelled', then 'revoked'); a seed of '²' (a digit to str.isdigit) was a 500; a
    software id of another form than conformity.naming's (a stray dot, capitals) was taken."""
    s = witness_service
    r = _ask(s, "https://127.0.0.1:9/rpc", software_id=software_id, seed=seed)
    assert r.status_code == 422, r.text  # type: ignore[attr-defined]
    assert ("software_id" if seed == "0" else "seed") in r.text  # type: ignore[attr-defined]
    assert s.table("SELECT count(*) FROM uploads") == [(0,)]


def test_an_agency_without_witnessed_runs_says_so(runs: Runs, catalog: Catalog, home: Path, tmp_path: Path) -> None:
    s = make_service(tmp_path / "registry.sqlite3", runs, catalog, home, tmp_path)
    r = _ask(s, "https://127.0.0.1:9/rpc")
    assert r.status_code == 503 and r.json()["type"].endswith("witnessed-runs-unavailable")  # type: ignore[attr-defined]
    s.config.database.dispose()


def test_the_web_form_checks_csrf_and_the_endpoint_and_queues_nothing_bad(witness_service: Service) -> None:
    s = witness_service
    c = s.client()
    login = c.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
    assert c.post("/login", data={"login": "ref", "password": PASSWORD, "csrf": token}).status_code == 303
    page = c.get("/vendor")
    assert "Ask for a witnessed run" in page.text and f'value="{WAVE}/{CATEGORY}"' in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    fields = {"wave_category": f"{WAVE}/{CATEGORY}", "driver_url": "http://127.0.0.1:9/rpc", "software": "RefApp",
              "version": "1.0.0", "registration_id": "REG-REF-0001"}
    empty_row = [("evidence_file_1", ("", b"", "application/octet-stream"))]
    r = c.post("/vendor/witnessed", data=fields, files=empty_row)  # no CSRF token: a forged form
    assert r.status_code == 403 and r.json()["type"].endswith("csrf")
    r = c.post("/vendor/witnessed", data=fields | {"csrf": csrf}, files=empty_row,
               headers={"Accept": "text/html"})
    assert r.status_code == 422 and "HTTPS" in r.text
    assert s.table("SELECT count(*) FROM uploads") == [(0,)]


def test_one_witnessed_run_at_a_time_per_vendor_and_a_run_past_its_bound_is_stopped(
        runs: Runs, catalog: Catalog, home: Path, tmp_path: Path, agency_sandbox: SandboxAccess) -> None:
    from conformity.agency.registry import Registry
    from conformity.agency.service import accounts, witnessed

    pki = runs.root / "sandbox" / "pki"
    s = make_service(tmp_path / "registry.sqlite3", runs, catalog, home, tmp_path,
                     witness=WitnessConfig(sandbox=agency_sandbox, driver_ca=pki / "ca.pem", allow_private=True,
                                           timeout=0.5))
    served = _serve(REFERENCE, pki)
    url = next(served)
    try:
        with Registry(s.config.database) as reg:
            ref = accounts.account(reg.db, "ref")
        assert ref is not None
        fields = {"wave": WAVE, "category": CATEGORY, "driver_url": url, "software": "RefApp", "version": "1.0.0",
                  "registration_id": "REG-REF-0001"}
        queued = witnessed.request_run(s.config, ref, witnessed.parse_request(fields, s.config), [], "test")
        assert queued.status(None, dt.datetime.now(dt.UTC)) == "queued"
        r = _ask(s, url)
        assert r.status_code == 409 and r.json()["running"] == queued.id  # type: ignore[attr-defined]
        assert (s.config.uploads / f"{queued.id}.evidence").is_dir()  # kept for its run
        witnessed.run(s.config, queued.id)  # bounded at 0.5 s: stopped after its first scenario
        mine = s.vendor().get(f"/api/v1/submissions/{queued.id}").json()
    finally:
        next(served, None)
        s.config.database.dispose()
    assert mine["state"] == "refused" and "was stopped after 1 of" in mine["findings"][0], mine
    assert s.table("SELECT count(*) FROM submissions") == [(0,)]
    assert not (s.config.uploads / f"{queued.id}.evidence").exists()  # refused: no run reads it again


def test_a_driver_host_on_a_private_address_is_refused_and_a_run_calls_only_the_checked_address(
        agency_sandbox: SandboxAccess) -> None:
    """SSRF and DNS rebinding: the agency calls public addresses only, and every call goes to the address checked."""
    public_only = WitnessConfig(sandbox=agency_sandbox)
    for url in ("https://127.0.0.1:9/rpc", "https://localhost:9/rpc", "https://[::1]:9/rpc", "https://10.1.2.3/rpc"):
        with pytest.raises(HTTPProblem) as info:
            check_endpoint(url, public_only)
        assert info.value.status == 422 and info.value.code == "driver-not-public", url
        assert "public addresses only" in info.value.detail
    with pytest.raises(AddressRefused):
        permitted_address("localhost", 443, public_only)
    assert permitted_address("8.8.8.8", 443, public_only) == "8.8.8.8"  # a literal public address: no look-up
    assert permitted_address("127.0.0.1", 443, WitnessConfig(sandbox=agency_sandbox, allow_private=True)) == "127.0.0.1"


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"wave": ' + b"[" * 500 + b"]" * 500 + b"}",
                                  b'{"wave": NaN}'], ids=["100000-deep", "500-deep", "nan"])
def test_a_json_request_nested_too_deep_is_refused_clearly_and_queues_nothing(witness_service: Service,
                                                                              body: bytes) -> None:
    """Issue 9 (bad input): a JSON witness request nested 100,000 deep was a RecursionError (500), not a 400."""
    r = witness_service.vendor().post("/api/v1/witnessed-runs", content=body,
                                      headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["type"].endswith("json-malformed") and problem["detail"].startswith("the body is not JSON: ")
    assert witness_service.table("SELECT count(*) FROM uploads") == [(0,)]


def test_refused_evidence_is_named_as_the_vendor_sent_it_and_no_file_of_a_request_is_lost(
        witness_service: Service, tmp_path: Path) -> None:
    """A refused evidence file was named by where the agency keeps it (its data folder, the upload's id) and by a
    vendor.toml the vendor never sent; two files of one requirement with one name (or names equal once cleaned) kept
    only the last, the others dropped without a word. Both are refused clearly now, before anything is queued."""
    s = witness_service
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ\x90\x00" + bytes(200))
    r = _ask(s, "https://127.0.0.1:9/rpc", {"SECURITY-013": exe})
    doc = r.json()  # type: ignore[attr-defined]
    assert r.status_code == 422 and doc["type"].endswith("invalid-evidence"), doc  # type: ignore[attr-defined]
    assert str(s.config.data) not in r.text and "upl_" not in r.text and "vendor.toml" not in r.text, r.text  # type: ignore[attr-defined]
    assert "SECURITY-013/tool.exe at evidence.SECURITY-013: type not allowed" in doc["detail"], doc
    data = {"wave": WAVE, "category": CATEGORY, "driver_url": "https://127.0.0.1:9/rpc", "software": "RefApp",
            "version": "1.0.0", "registration_id": "REG-REF-0001"}
    for second in ("a.pdf", ".a.pdf", "dir/a.pdf"):
        files = [("evidence.SECURITY-013", ("a.pdf", b"%PDF-1.4 one\n%%EOF\n")),
                 ("evidence.SECURITY-013", (second, b"%PDF-1.4 two\n%%EOF\n"))]
        r = s.vendor().post("/api/v1/witnessed-runs", data=data, files=files)
        doc = r.json()  # type: ignore[attr-defined]
        assert r.status_code == 422 and doc["type"].endswith("invalid-witness-request"), (second, doc)
        assert "evidence.SECURITY-013" in doc["detail"] and "'a.pdf'" in doc["detail"], doc
    assert s.table("SELECT count(*) FROM uploads") == [(0,)]
    assert not list(s.config.uploads.glob("*.evidence")) if s.config.uploads.exists() else True
