"""The infrastructure signs what it emits: data-received events sealed in signed segments, its key published."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformity.catalog.schema import validator
from conformity.infrastructure_keys import parse_keys
from conformity.payments.authenticate import authenticate
from conformity.segments import sidecar_path
from conformity.signing import SigningKey
from sandbox.config import SandboxConfig
from sandbox.events import EventLog, data_received
from sandbox.server import RunningSandbox, start_in_thread

SOURCES = ("urn:usine:sandbox:dmp", "urn:usine:sandbox:mss")
INSTALLATION = {"id": "ins_x", "vendor_id": "acme", "wave": "2026-W1", "category": "HOSPITAL",
                "software": {"id": "acme-ehr", "name": "Acme", "version": "3.2", "registration_id": "R"},
                "site": {"id": "750100011", "size": "M", "name": "Site"}}


def emitted(n: int, source: str = SOURCES[0]) -> list[dict]:
    return [data_received(INSTALLATION, source=source, kind="document", document_type="34106-7", size=10,
                          sha256="a" * 64, reference=f"r{i}") for i in range(n)]


def message(subject: str) -> dict:
    pdf = base64.b64encode(b"%PDF-1.7").decode()
    return {"from": "dr.martin@chu-exemple.mssante.fr", "to": ["secretariat@labo.mssante.fr"], "subject": subject,
            "body": "Bonjour", "attachments": [{"filename": "l.pdf", "content_type": "application/pdf", "content": pdf,
                                                "patient": {"ins": "199027505648460", "oid": "1.2.250.1.213.1.4.10"}}]}


def test_the_sandbox_seals_what_it_emits_and_publishes_its_key(sandbox_server: RunningSandbox,
                                                                admin: httpx.Client, client: httpx.Client) -> None:
    r = admin.post("/admin/installations", json={
        "vendor_id": "acme", "software": {"id": "acme-ehr", "name": "Acme EHR", "version": "3.2"},
        "site": {"id": "750000001", "size": "L"}, "wave": "2026-W1", "category": "HOSPITAL"})
    token = r.json()["token"]
    for i in range(3):
        sent = client.post("/prod/mss/messages", json=message(f"s{i}"), headers={"Authorization": f"Bearer {token}"})
        assert sent.status_code == 201, sent.text
    sealed = admin.post("/admin/events/seal").json()
    assert sealed["sealed"]["format"] == "usine.event-segment/1" and sealed["segments"] >= 1
    assert "urn:usine:sandbox:mss" in sealed["sealed"]["sources"]
    assert admin.post("/admin/events/seal").json()["sealed"] is None  # nothing new to seal

    published = client.get("/.well-known/usine-infrastructure-keys").json()  # no credentials needed
    assert not list(validator("infrastructure-keys").iter_errors(published))
    assert set(SOURCES) <= set(published["keys"][0]["sources"])
    trace_kid = client.get("/.well-known/usine-trace-keys").json()["keys"][0]["kid"]
    assert published["keys"][0]["kid"] != trace_kid  # the infrastructure key is its own, not the trace key
    config = sandbox_server.config
    assert json.loads(config.infrastructure_keys_path.read_text()) == published

    proof = authenticate(config.events_path, parse_keys(published))
    refused = [s for s in proof.spans if s.reason is not None]
    assert [s.last for s in refused] == [None]  # every emitted line is proven, up to the unsealed tail
    assert proof.proven_lines == refused[0].first - 1 >= 3


def test_a_segment_every_n_events_and_the_chain_survives_a_restart(tmp_path: Path) -> None:
    key = SigningKey.from_seed(b"infra")
    path = tmp_path / "events" / "data-received.jsonl"
    log = EventLog(path, key, SOURCES, seal_every=3)
    for ev in emitted(7):
        log.append(ev)
    assert log.segments() == 2 and log.sealer.unsealed == 1
    with open(path, "ab") as fh:
        fh.write(b'{"torn": ')  # a write that never returned
    again = EventLog(path, key, SOURCES, seal_every=3)  # a restart
    assert not path.read_bytes().endswith(b'{"torn": ')
    assert again.sealer.unsealed == 1 and again.read(0, 100)[1] == 7
    for ev in emitted(2, SOURCES[1]):
        again.append(ev)
    assert again.segments() == 3 and again.seal() is None
    proof = authenticate(path, parse_keys({"format": "usine.infrastructure-keys/1", "keys": [
        key.verify_key.to_jwk() | {"sources": list(SOURCES)}]}))
    assert [(s.first, s.last, s.reason) for s in proof.spans] == \
        [(1, 3, None), (4, 6, None), (7, 9, None), (10, None, "event-unsigned")]
    payloads = [json.loads(base64.urlsafe_b64decode(json.loads(x)["payload"] + "=="))
                for x in sidecar_path(path).read_text().splitlines()]
    assert [p["seq"] for p in payloads] == [0, 1, 2] and len({p["stream"] for p in payloads}) == 1
    assert payloads[2]["sources"] == sorted(SOURCES)


def test_an_event_of_a_source_the_key_does_not_vouch_for_is_not_emitted(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "e.jsonl", SigningKey.from_seed(b"infra"), SOURCES)
    with pytest.raises(ValueError, match="not one the infrastructure key vouches for"):
        log.append(emitted(1, "https://attacker.example/fake")[0])
    assert not (tmp_path / "e.jsonl").exists() or (tmp_path / "e.jsonl").read_bytes() == b""


def test_shutdown_seals_the_tail(tmp_path: Path) -> None:
    config = SandboxConfig(data_dir=tmp_path, admin_token="t")
    with start_in_thread(config) as running:
        running.server.config.app.state.event_log.append(emitted(1)[0])
    proof = authenticate(config.events_path, parse_keys(json.loads(config.infrastructure_keys_path.read_text())))
    assert [(s.first, s.last, s.reason) for s in proof.spans] == [(1, 1, None), (2, None, "event-unsigned")]


@pytest.mark.parametrize("corrupt", ["not json", "[" * 100_000 + "]" * 100_000], ids=["not-json", "100000-deep"])
def test_a_corrupt_segments_file_stops_the_sandbox_with_a_clear_error(tmp_path: Path, corrupt: str) -> None:
    from conformity.errors import InputError

    path = tmp_path / "e.jsonl"
    log = EventLog(path, SigningKey.from_seed(b"infra"), SOURCES, seal_every=1)
    log.append(emitted(1)[0])
    sidecar_path(path).write_text(corrupt + "\n")
    with pytest.raises(InputError, match="line 1 is not a signed segment"):
        EventLog(path, SigningKey.from_seed(b"infra"), SOURCES)


def test_events_wait_at_most_seal_seconds_for_their_segment(tmp_path: Path) -> None:
    import time

    config = SandboxConfig(data_dir=tmp_path, admin_token="t", seal_seconds=0.2)
    with start_in_thread(config) as running:
        running.server.config.app.state.event_log.append(emitted(1)[0])
        log = running.server.config.app.state.event_log
        deadline = time.monotonic() + 20
        # The sidecar appears (O_CREAT) a moment before its segment is written and the tail reset:
        # wait on the sealer's own state, never on the file's existence.
        while log.sealer.unsealed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.sealer.unsealed == 0, "no segment sealed by the timer"
        assert log.segments() == 1
        assert sidecar_path(config.events_path).read_bytes().count(b"\n") == 1


def test_the_infrastructure_exports_its_events_as_a_sealed_parquet_file(tmp_path: Path) -> None:
    """Every event, sealed first, as one Parquet file under one segment by the same key: every row proven."""
    from conformity.infrastructure_keys import keys_document
    from conformity.payments import parquet

    key = SigningKey.from_seed(b"infra")
    log = EventLog(tmp_path / "events" / "data-received.jsonl", key, SOURCES, seal_every=3)
    with pytest.raises(ValueError, match="no data-received event yet"):
        log.export_parquet()
    for ev in emitted(7):
        log.append(ev)
    done = log.export_parquet()
    target = Path(done["file"])
    assert done["rows"] == 7 and target.name == "data-received.parquet" and log.sealer.unsealed == 0
    assert parquet.check(target) == 7
    trust = parse_keys(keys_document([(key.verify_key, SOURCES)], name="t"))
    proof = authenticate(target, trust, read=False)
    copy, settled = parquet.take(target, proof, tmp_path / "scratch")
    assert settled == [0] and proof.spans[0].reason is None and proof.proven_lines == 7
    assert [r["reference"] for r in parquet.pq.read_table(copy).column("data").to_pylist()] == [f"r{i}" for i in range(7)]
    assert not list(target.parent.glob(".*tmp*"))  # nothing half-written left behind


def test_the_parquet_export_endpoint_needs_the_admin_and_events(sandbox_server: RunningSandbox,
                                                               admin: httpx.Client, client: httpx.Client) -> None:
    assert client.post("/admin/events/parquet").status_code in (401, 403)
    r = admin.post("/admin/installations", json={
        "vendor_id": "acme", "software": {"id": "acme-ehr", "name": "Acme EHR", "version": "3.2"},
        "site": {"id": "750000002", "size": "L"}, "wave": "2026-W1", "category": "HOSPITAL"})
    token = r.json()["token"]
    sent = client.post("/prod/mss/messages", json=message("p"), headers={"Authorization": f"Bearer {token}"})
    assert sent.status_code == 201, sent.text
    done = admin.post("/admin/events/parquet")
    assert done.status_code == 200, done.text
    assert done.json()["rows"] >= 1 and Path(done.json()["file"]).is_file()


class _SealFailsOnce(EventLog):
    """An event log whose first seal fails as a full or read-only disk does."""

    failed = False

    def seal(self) -> dict[str, Any] | None:
        if not self.failed:
            self.failed = True
            raise OSError(28, "No space left on device")
        return super().seal()


def test_a_seal_that_fails_is_tried_again_at_the_next_period(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The periodic sealing task died with its first failure: no event of that worker was sealed again until a
    restart, and the shutdown, awaiting the dead task, raised its error before the last seal."""
    import logging

    from sandbox.app import _seal_periodically
    from tests.helpers import run_periodic_until

    log = _SealFailsOnce(tmp_path / "e.jsonl", SigningKey.from_seed(b"infra"), SOURCES)
    calls: list[int] = []
    real_seal = log.seal

    def counted() -> dict[str, Any] | None:
        calls.append(1)
        return real_seal()

    log.seal = counted  # type: ignore[method-assign]  # counts the task's seals, the first of which fails

    with caplog.at_level(logging.ERROR, logger="usine.sandbox.events"):
        assert run_periodic_until(lambda: _seal_periodically(log, 0.01), lambda: len(calls) >= 3)
    assert log.failed and len(calls) >= 3 and "No space left on device" in caplog.text
