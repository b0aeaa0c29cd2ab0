"""Attack 3: only events the infrastructure's signed segments prove, from sources its key vouches for, are money.

Each attack is a file a payment agency could be handed: lines forged, edited, added, removed or
reordered, segments re-signed, swapped or spliced. In each, the refused lines carry their reason
code with file and line, nothing is paid for them, and nothing about them is recorded in the ledger.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.util import urlsafe_b64decode

from conformity.catalog.schema import schema_problems
from conformity.infrastructure_keys import parse_keys
from conformity.payments.authenticate import authenticate
from conformity.payments.store import recorded_events
from conformity.segments import Sealer, sidecar_path, write_sealed
from tests.payments.builders import (
    FORGER,
    INFRA,
    T0,
    event,
    events_for,
    infrastructure_keys,
    installation,
    line_of,
)
from tests.payments.workspace import Workspace, ledger_state

SITE_A = installation("750100011", "M")
SITE_B = installation("690200022", "M")
ATTACKER = "https://attacker.example/fake"


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def recorded_sources(ws: Workspace) -> set[str]:
    return {e[0] for e in recorded_events(ws.ledger)}


def paid_sites(r: Any) -> list[str]:
    return sorted(o["site_id"] for o in r.orders)


def by_line(r: Any) -> dict[int, str]:
    return {x["line"]: x["reason"] for x in r.refusals if x["kind"] == "event"}


# ---------------------------------------------------------------------------------------------- forged lines
def test_forged_source_lines_are_not_paid(ws: Workspace) -> None:
    """The issue's attack: five well-formed lines with an attacker's source, appended to a genuine file."""
    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_A, 5))
    forged = [line_of(e).encode() + b"\n" for e in events_for(SITE_B, 5, source=ATTACKER)]
    f.write_bytes(f.read_bytes() + b"".join(forged))
    r = ws.run(f)
    assert r.returncode == 0, r.stderr
    assert paid_sites(r) == ["750100011"]  # the genuine installation only
    assert r.reasons() == {"event-unsigned": 5}
    refused = [x for x in r.refusals if x["reason"] == "event-unsigned"]
    assert [(x["file"], x["line"], x["source"], x["site_id"]) for x in refused] == \
        [(str(f), n, ATTACKER, "690200022") for n in range(6, 11)]
    assert "after the last sealed segment" in refused[0]["detail"]
    assert recorded_sources(ws) == {"urn:usine:sandbox:dmp"}  # forged lines leave no trace in the ledger
    assert r.summary["lines_unproven"] == 5 and r.summary["authentication"][0]["lines_proven"] == 5


def test_forged_lines_with_a_genuine_source_are_not_paid_either(ws: Workspace) -> None:
    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_A, 1))
    f.write_bytes(f.read_bytes() + b"".join(line_of(e).encode() + b"\n" for e in events_for(SITE_B, 5)))
    r = ws.run(f)
    assert r.reasons() == {"event-unsigned": 5} and r.summary["installations_paid"] == 0


def test_a_file_without_segments_is_refused_line_by_line(ws: Workspace) -> None:
    ws.label()
    r = ws.run(ws.events("e.jsonl", events_for(SITE_A, 5), key=None))
    assert r.reasons() == {"event-unsigned": 5} and r.summary["installations_paid"] == 0
    assert "e.jsonl.segments not found" in r.refusals[0]["detail"]
    assert ledger_state(ws.ledger)["events"] == []


@pytest.mark.parametrize("junk", ["lines", "one-line", "parquet"])
def test_unsigned_junk_dropped_beside_the_events_cannot_stop_the_run(ws: Workspace, junk: str) -> None:
    """Anyone who can drop a file in the events folder: 40 lines of 1 MB (each under the line limit), one line of
    40 MB, or a small Parquet file of 40 rows of 1 MB text. DuckDB once parsed them all in one vector and ran out of
    memory (a traceback, nothing paid). Each is refused, the genuine events are paid."""
    ws.label()
    folder = ws.root / "events"
    ws.events("genuine.jsonl", events_for(SITE_A, 5))
    if junk == "parquet":
        from conformity.payments import parquet

        big = [dict(e, id=f"big-{i}", data=dict(e["data"], site=dict(e["data"]["site"], name="x" * 1_000_000)))
               for i, e in enumerate(events_for(SITE_B, 40, first=100))]
        parquet.write_events(folder / "junk.parquet", big)
    else:
        line = b'{"a":"' + b"x" * (1_000_000 if junk == "lines" else 40_000_000) + b'"}\n'
        (folder / "junk.jsonl").write_bytes(line * (40 if junk == "lines" else 1))
    r = ws.run(folder)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.reasons() == {"event-unsigned": 40 if junk != "one-line" else 1}
    assert r.summary["installations_paid"] == 1


def test_a_forged_line_cannot_preempt_a_genuine_event(ws: Workspace) -> None:
    """Unproven lines are never recorded: a forged (source, id) does not turn the genuine event into a conflict."""
    ws.label()
    genuine = events_for(SITE_A, 5)
    squatter = {**genuine[0], "data": {**genuine[0]["data"], "bytes": 1}}
    r1 = ws.run(ws.events("forged.jsonl", [squatter], key=None))
    assert r1.reasons() == {"event-unsigned": 1}
    r2 = ws.run(ws.events("genuine.jsonl", genuine))
    assert r2.reasons() == {} and paid_sites(r2) == ["750100011"]


# ---------------------------------------------------------------------------------------------- sources
def test_a_source_the_key_does_not_vouch_for_is_refused(ws: Workspace) -> None:
    ws.label()
    ws.infrastructure.write_text(json.dumps(infrastructure_keys(sources=["urn:usine:sandbox:mss"])))
    r = ws.run(ws.events("e.jsonl", events_for(SITE_A, 5)))
    assert r.reasons() == {"source-untrusted": 5} and r.summary["installations_paid"] == 0
    assert "'urn:usine:sandbox:dmp' is not one that segment 0's signing key vouches for" in r.refusals[0]["detail"]
    assert ledger_state(ws.ledger)["events"] == []


def test_another_trusted_key_cannot_vouch_for_someone_elses_source(ws: Workspace, tmp_path: Path) -> None:
    """A second trusted infrastructure (its own sources) signs events claiming the national service's source."""
    ws.label()
    doc = infrastructure_keys()
    doc["keys"] += infrastructure_keys(FORGER, ["urn:regional:infra"])["keys"]
    ws.infrastructure.write_text(json.dumps(doc))
    theirs = ws.events("regional.jsonl", events_for(SITE_B, 5), key=FORGER)
    ours = ws.events("national.jsonl", events_for(SITE_A, 5))
    r = ws.run(theirs, ours)
    assert paid_sites(r) == ["750100011"] and r.reasons() == {"source-untrusted": 5}


# ---------------------------------------------------------------------------------------------- edited files
def _edit(path: Path, how: str) -> None:
    """One line of a sealed file changed the way an attacker would (lines 1-4 are segment 0, line 5 segment 1)."""
    ls = lines(path)
    if how == "edited":  # a bigger site is paid more
        ls[1] = ls[1].replace(b'"size":"M"', b'"size":"L"')
    elif how == "added":
        ls.insert(2, line_of(event(SITE_A, T0, 99)).encode() + b"\n")
    elif how == "removed":
        del ls[1]
    elif how == "reordered":
        ls[0], ls[1] = ls[1], ls[0]
    elif how == "duplicated":
        ls.insert(1, ls[1])
    elif how == "whitespace":  # same JSON, other bytes
        ls[3] = ls[3].replace(b'{"', b'{ "', 1)
    path.write_bytes(b"".join(ls))


@pytest.mark.parametrize("how", ["edited", "added", "removed", "reordered", "duplicated", "whitespace"])
def test_an_edited_added_removed_or_reordered_line_is_detected(ws: Workspace, how: str) -> None:
    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_A, 5))  # segments: lines 1-4, line 5
    _edit(f, how)
    r = ws.run(f)
    assert r.returncode == 0, r.stderr
    assert r.summary["installations_paid"] == 0 and r.orders == []
    reasons = by_line(r)
    assert {reasons[n] for n in (1, 2, 3, 4)} == {"event-segment-mismatch"}
    assert "do not hash to the value signed in segment 0" in r.refusals[0]["detail"]
    assert ledger_state(ws.ledger)["payments"] == []


def test_an_edited_line_costs_its_segment_only(ws: Workspace) -> None:
    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_A, 5) + events_for(SITE_B, 5, first=10), every=5)
    _edit(f, "edited")
    r = ws.run(f)
    assert paid_sites(r) == ["690200022"] and r.reasons() == {"event-segment-mismatch": 5}


def test_a_truncated_file_refuses_the_short_segment(ws: Workspace) -> None:
    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_A, 8))
    f.write_bytes(b"".join(lines(f)[:6]))
    r = ws.run(f)
    assert by_line(r) == {5: "event-segment-mismatch", 6: "event-segment-mismatch"}
    assert "the file has only 6 lines" in r.refusals[0]["detail"]


# ---------------------------------------------------------------------------------------------- the sidecar
def _sidecar(path: Path) -> list[bytes]:
    return sidecar_path(path).read_bytes().splitlines(keepends=True)


def _write_sidecar(path: Path, entries: list[bytes]) -> None:
    sidecar_path(path).write_bytes(b"".join(entries))


def test_segments_signed_by_an_untrusted_key(ws: Workspace) -> None:
    ws.label()
    r = ws.run(ws.events("e.jsonl", events_for(SITE_A, 5), key=FORGER))
    assert r.reasons() == {"event-signature-invalid": 5} and r.summary["installations_paid"] == 0
    assert "untrusted key" in r.refusals[0]["detail"]


def test_a_segment_edited_after_signing(ws: Workspace) -> None:
    """The lines are edited and the segment's hash updated to match: the signature no longer does."""
    import base64
    import hashlib

    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_A, 5))
    _edit(f, "edited")
    entries = _sidecar(f)
    signed = json.loads(entries[0])
    payload = json.loads(base64.urlsafe_b64decode(signed["payload"] + "=="))
    payload["sha256"] = hashlib.sha256(b"".join(lines(f)[:4])).hexdigest()
    signed["payload"] = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    entries[0] = json.dumps(signed).encode() + b"\n"
    _write_sidecar(f, entries)
    r = ws.run(f)
    reasons = by_line(r)
    assert [reasons[n] for n in (1, 2, 3, 4)] == ["event-signature-invalid"] * 4
    assert reasons[5] == "event-chain-broken"  # segment 1's prev is the hash of the genuine segment 0
    assert r.summary["installations_paid"] == 0


def test_an_unreadable_segment_leaves_the_rest_unattributed(ws: Workspace) -> None:
    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_A, 9))
    entries = _sidecar(f)
    entries[1] = b'{"not": "a segment"}\n'
    _write_sidecar(f, entries)
    r = ws.run(f)
    reasons = by_line(r)
    assert 1 not in reasons and {reasons[n] for n in range(5, 10)} == {"event-signature-invalid"}
    assert "no line from here on can be attributed" in r.refusals[0]["detail"]


def test_segments_swapped_or_removed_break_the_chain(ws: Workspace) -> None:
    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_A, 12))  # segments 0 (1-4), 1 (5-8), 2 (9-12)
    entries = _sidecar(f)
    _write_sidecar(f, [entries[1], entries[0], entries[2]])
    r = ws.run(f)
    reasons = by_line(r)
    assert [reasons.get(n) for n in (1, 5, 9)] == ["event-unsigned", "event-chain-broken", None]
    assert "not right after the start of the file" in next(x["detail"] for x in r.refusals if x["line"] == 5)
    _write_sidecar(f, [entries[0], entries[2]])  # segment 1 dropped, its lines kept
    r = ws.run(f)
    reasons = by_line(r)
    assert [reasons.get(n) for n in (4, 5, 9)] == [None, "event-unsigned", "event-chain-broken"]  # 1-4 now proven


def test_a_segment_spliced_from_another_file(ws: Workspace) -> None:
    """The same lines sealed in another stream: the segment verifies alone, but does not chain."""
    ws.label()
    evs = events_for(SITE_A, 8)
    f = ws.events("e.jsonl", evs)
    other = write_sealed(ws.root / "other" / "e.jsonl", (line_of(e) for e in evs), INFRA, every=4)
    _write_sidecar(f, [_sidecar(f)[0], _sidecar(other)[1]])
    r = ws.run(f)
    assert r.reasons() == {"event-chain-broken": 4}
    assert "belongs to another events stream" in r.refusals[0]["detail"]


def test_a_replayed_segment_entry_changes_nothing(ws: Workspace) -> None:
    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_A, 8))
    entries = _sidecar(f)
    _write_sidecar(f, [entries[0], entries[1], entries[0], entries[1]])
    r = ws.run(f)
    assert r.reasons() == {} and paid_sites(r) == ["750100011"]
    assert any("covers lines already covered" in n for n in r.summary["authentication"][0]["notes"])


def test_the_unsealed_tail_is_paid_once_sealed(ws: Workspace) -> None:
    """A live file between seals: its tail waits; sealed later (the chain continues), it is counted."""
    ws.label()
    f = write_sealed(ws.root / "events" / "live.jsonl", (line_of(e) for e in events_for(SITE_A, 5)), INFRA, every=4,
                     seal_tail=False)
    r1 = ws.run(f)
    assert by_line(r1) == {5: "event-unsigned"} and r1.summary["installations_paid"] == 0
    sealer = Sealer(f, INFRA, every=4)
    assert sealer.unsealed == 1
    sealer.seal()
    r2 = ws.run(f)
    assert paid_sites(r2) == ["750100011"] and r2.reasons() == {"duplicate-event": 4}


# ---------------------------------------------------------------------------------------------- trust file
def test_no_infrastructure_keys_refuses_to_start(ws: Workspace) -> None:
    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_A, 5))
    args = ws.args((f,), ws.root / "o", "2027-01-01T00:00:00Z", "2026-W1")
    i = args.index("--infrastructure-keys")
    del args[i:i + 2]
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("USINE_INFRASTRUCTURE_KEYS", "USINE_AGENCY_PUBKEY")}
    proc = subprocess.run([sys.executable, "-m", "conformity", *args], capture_output=True, text=True, env=env,
                          check=False)
    assert proc.returncode == 2 and "no infrastructure keys" in proc.stderr and "Traceback" not in proc.stderr
    assert not ws.ledger.exists()


@pytest.mark.parametrize("bad", ["kid-not-thumbprint", "pem-other-key", "no-sources", "deep", "not-json", "empty"])
def test_a_bad_infrastructure_keys_file_exits_2(ws: Workspace, bad: str) -> None:
    doc = infrastructure_keys()
    if bad == "kid-not-thumbprint":
        doc["keys"][0]["kid"] = FORGER.kid
    elif bad == "pem-other-key":
        doc["keys"][0]["pem"] = FORGER.verify_key.pem()
    elif bad == "no-sources":
        doc["keys"][0]["sources"] = []
    text = {"deep": "[" * 100_000 + "]" * 100_000, "not-json": "{keys: x}", "empty": ""}.get(bad, json.dumps(doc))
    ws.infrastructure.write_text(text)
    r = ws.run(ws.events("e.jsonl", events_for(SITE_A, 5)))
    assert r.returncode == 2 and str(ws.infrastructure) in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not ws.ledger.exists()


# ---------------------------------------------------------------------------------------------- any tampering
def _mutate_lines(data: Any, ls: list[bytes]) -> list[bytes]:
    ls = list(ls)
    op = data.draw(st.sampled_from(["flip", "delete", "duplicate", "swap", "insert", "truncate"]))
    if not ls:
        return ls
    i = data.draw(st.integers(0, len(ls) - 1))
    if op == "flip":
        j = data.draw(st.integers(0, len(ls[i]) - 1))
        ls[i] = ls[i][:j] + bytes([ls[i][j] ^ data.draw(st.integers(1, 255))]) + ls[i][j + 1:]
    elif op == "delete":
        del ls[i]
    elif op == "duplicate":
        ls.insert(i, ls[i])
    elif op == "swap":
        k = data.draw(st.integers(0, len(ls) - 1))
        ls[i], ls[k] = ls[k], ls[i]
    elif op == "insert":
        ls.insert(i, data.draw(st.binary(max_size=40)) + b"\n")
    else:
        blob = b"".join(ls)
        return blob[:data.draw(st.integers(0, len(blob)))].splitlines(keepends=True)
    return ls


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_whatever_is_done_to_the_files_only_genuine_lines_are_proven(data: Any) -> None:
    """Any mix of edits to the events file and to its segments: no traceback, and a proven line is the original."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "e.jsonl"
        write_sealed(path, (line_of(e) for e in events_for(SITE_A, 10)), INFRA, every=3, seal_tail=False)
        original = lines(path)
        mutated, entries = original, _sidecar(path)
        for _ in range(data.draw(st.integers(1, 3))):
            if data.draw(st.booleans()):
                mutated = _mutate_lines(data, mutated)
            else:
                entries = _mutate_lines(data, entries)
        path.write_bytes(b"".join(mutated))
        _write_sidecar(path, entries)
        proof = authenticate(path, parse_keys(infrastructure_keys()))
        assert proof.spans[0].first == 1 and proof.spans[-1].last is None
        for before, after in itertools.pairwise(proof.spans):
            assert before.last is not None and after.first == before.last + 1
        for span in proof.spans:
            if span.reason is None:
                assert span.last is not None and mutated[span.first - 1:span.last] == original[span.first - 1:span.last]
                assert span.sources <= set(infrastructure_keys()["keys"][0]["sources"])


def test_third_party_verification_with_hashlib_and_a_jose_library(tmp_path: Path) -> None:
    """The README's code, run as it is, on files the infrastructure sealed: proven, then edited, then forged."""
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("<!-- third-party-event-verification -->", 1)[1].split("```python\n", 1)[1].split("```")[0]
    doc = (Path(__file__).resolve().parents[2] / "conformity" / "schemas" / "event-segments.md").read_text()
    assert snippet in doc  # the format's documentation shows the same code
    events = write_sealed(tmp_path / "data-received.jsonl", (line_of(e) for e in events_for(SITE_A, 10)), INFRA,
                          every=4, seal_tail=False)
    (tmp_path / "infrastructure-keys.json").write_text(json.dumps(infrastructure_keys()))

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True,
                              check=False)

    ok = check()
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "lines 1-8 proven; 2 not sealed yet"
    _edit(events, "edited")
    edited = check()
    assert edited.returncode != 0 and "segment 0 edited" in edited.stderr
    write_sealed(events, (line_of(e) for e in events_for(SITE_A, 4)), FORGER, every=4)
    forged = check()
    assert forged.returncode != 0 and "No key for kid" in forged.stderr


# ---------------------------------------------------------------------------------------------- read once
def _between_verification_and_reading(monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    """Change the events file right after the run checked its segments (as someone writing to it would)."""
    import conformity.payments.run as run_module

    def verify_then_change(path: Path, trust: Any, **kw: Any) -> Any:
        proof = authenticate(path, trust, **kw)
        change(path)
        return proof

    monkeypatch.setattr(run_module, "authenticate", verify_then_change)


def _edit_or_truncate(change: str) -> Any:
    def edit(path: Path) -> None:
        ls = lines(path)
        if change == "edited":
            ls[9] = ls[9].replace(b'"size":"M"', b'"size":"L"')  # line 10, in segment 2 (lines 9-12)
        else:
            ls = ls[:10]
        path.write_bytes(b"".join(ls))
    return edit


def _changed_segment_refused(ws: Workspace, out: Path, change: str) -> None:
    """Lines 9-12 (segment 2) refused as not the signed bytes, nothing of them recorded; lines 1-8 recorded."""
    refusals = json.loads((out / "refusals.json").read_text())["refusals"]
    refused = {x["line"]: x for x in refusals if x["kind"] == "event"}
    assert sorted(refused) == ([9, 10, 11, 12] if change == "edited" else [9, 10])
    assert {x["reason"] for x in refused.values()} == {"event-segment-mismatch"}
    if change == "truncated":
        assert "the file has only 10 lines" in refused[9]["detail"]
    recorded = {e[1] for e in ledger_state(ws.ledger)["events"]}
    assert recorded == {f"evt-acme-ehr-690200022-{n}" for n in range(5)} | {"evt-acme-ehr-750100011-10",
                                                                           "evt-acme-ehr-750100011-11",
                                                                           "evt-acme-ehr-750100011-12"}


@pytest.mark.parametrize("change", ["edited", "truncated"])
def test_a_file_changed_after_its_segments_were_checked_pays_only_the_signed_bytes(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """The file is read once: the bytes parsed are the bytes hashed, so a change after the sidecar was checked
    refuses the changed segment (and, truncated, the one the file now ends in) like a file handed over so."""
    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_B, 5) + events_for(SITE_A, 7, first=10))  # segments of 4 lines
    _between_verification_and_reading(monkeypatch, _edit_or_truncate(change))
    stats = ws.run_inproc(f, commit_every=1, out=ws.root / "out-changed")
    assert stats.lines == (12 if change == "edited" else 10) and stats.unproven == (4 if change == "edited" else 2)
    assert stats.proofs[0].proven_segments == 2 and stats.proofs[0].proven_lines == 8
    _changed_segment_refused(ws, ws.root / "out-changed", change)


@pytest.mark.parametrize("change", ["edited", "truncated"])
def test_a_file_changed_while_the_run_reads_it_pays_only_the_signed_bytes(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """Changed after the first segment was read and committed (the file read in blocks of 200 bytes): the same."""
    import functools

    from conformity.payments import engine, loader

    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_B, 5) + events_for(SITE_A, 7, first=10))
    monkeypatch.setattr(engine, "batches", functools.partial(loader.batches, block=200))
    first_batch = engine.Engine._batch
    edit = _edit_or_truncate(change)

    def batch_then_change(self: Any, batch: Any) -> None:
        first_batch(self, batch)
        if batch.first == 1:
            assert recorded_sources(ws) == {"urn:usine:sandbox:dmp"}  # lines 1-4 committed before the change
            edit(f)

    monkeypatch.setattr(engine.Engine, "_batch", batch_then_change)
    ws.run_inproc(f, commit_every=1, out=ws.root / "out-changed")
    _changed_segment_refused(ws, ws.root / "out-changed", change)


def test_lines_appended_while_a_run_reads_are_left_for_later(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_A, 5))
    _between_verification_and_reading(monkeypatch, lambda path: path.write_bytes(
        path.read_bytes() + b"".join(line_of(e).encode() + b"\n" for e in events_for(SITE_B, 5))))
    stats = ws.run_inproc(f)
    assert stats.paid == 1 and stats.unproven == 5


@pytest.mark.parametrize("bad_time", ["2026-05-01 09:00:00Z", "2026-05-01T09:00:00", "2026-05-01", "2026-05-01T09:00Z",
                                      "2026-02-30T09:00:00Z", "2027-01-01T25:00:00Z", "20260501T090000Z"])
def test_an_event_time_that_is_no_rfc3339_date_time_costs_its_line_only(ws: Workspace, bad_time: str) -> None:
    """The sealer takes as a segment's time range only what the segment schema's date-time format accepts (the
    verifier's rule): a time Python reads but RFC 3339 does not, earliest or latest of its segment, was sealed as the
    segment's time_min or time_max, and the verifier refused the segment, every good event in it."""
    ws.label()
    good = events_for(installation(), 8)
    bad = dict(event(installation(), T0, 99))
    bad["time"] = bad_time
    path = ws.events("e.jsonl", good[:4] + [bad] + good[4:], every=1000)
    [segment] = [json.loads(urlsafe_b64decode(json.loads(line)["payload"].encode()))
                 for line in sidecar_path(path).read_text().splitlines()]
    assert (segment["time_min"], segment["time_max"]) == (good[0]["time"], good[-1]["time"])
    r = ws.run(path)
    assert r.returncode == 0, r.stderr
    assert r.summary["installations_paid"] == 1 and r.reasons() == {"wrong-envelope": 1}
    [refused] = r.refusals
    assert refused["line"] == 5 and "RFC 3339" in refused["detail"]


def test_lower_case_t_and_z_are_rfc3339_and_may_bound_a_segment(ws: Workspace) -> None:
    ws.label()
    events = events_for(installation(), 6)
    events[0]["time"] = events[0]["time"].replace("T", "t").replace("Z", "z")
    path = ws.events("e.jsonl", events, every=1000)
    [segment] = [json.loads(urlsafe_b64decode(json.loads(line)["payload"].encode()))
                 for line in sidecar_path(path).read_text().splitlines()]
    assert segment["time_min"] == events[0]["time"]
    r = ws.run(path)
    assert r.returncode == 0 and r.summary["installations_paid"] == 1 and r.reasons() == {}


def test_a_segment_with_a_bad_time_range_says_the_date_time_format_is_wrong() -> None:
    payload = {"format": "usine.event-segment/1", "stream": "str_" + "0" * 32, "seq": 0, "first_line": 1,
               "last_line": 1, "count": 1, "offset": 0, "length": 10, "sha256": "0" * 64, "prev": None,
               "time_min": "2026-05-01 09:00:00Z", "time_max": None, "sources": ["urn:x"],
               "sealed": "2026-05-01T09:00:00Z", "issuer": {"name": "x", "key_id": "A" * 43}}
    [problem] = schema_problems("event-segment", payload, "e.jsonl.segments")
    assert problem.where == "time_min"
    assert problem.message.startswith("'2026-05-01 09:00:00Z' is not in the date-time format: an RFC 3339 date-time")
    assert "expected null" not in problem.message


def test_a_segment_time_of_a_wrong_type_names_both_types_it_may_be() -> None:
    """A number where a date-time or null is expected said "expected null" (one branch of the schema's oneOf)."""
    payload = {"format": "usine.event-segment/1", "stream": "str_" + "0" * 32, "seq": 0, "first_line": 1,
               "last_line": 1, "count": 1, "offset": 0, "length": 10, "sha256": "0" * 64, "prev": None,
               "time_min": None, "time_max": 1777626000, "sources": ["urn:x"],
               "sealed": "2026-05-01T09:00:00Z", "issuer": {"name": "x", "key_id": "A" * 43}}
    [problem] = schema_problems("event-segment", payload, "e.jsonl.segments")
    assert (problem.where, problem.message) == ("time_max", "wrong type: expected null or string, got int 1777626000")


@pytest.mark.parametrize("pem", [b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
                                 b"\n-----BEGIN PRIVATE KEY-----\nMC4CAQ\n-----END PRIVATE KEY-----\n"])
def test_a_pem_key_given_as_the_infrastructure_keys_file_is_said_to_be_one(pem: bytes, tmp_path: Path) -> None:
    """--infrastructure-keys given a PEM key answered "line 1, column 1: not valid JSON", naming no expected format."""
    from conformity.errors import InputError
    from conformity.infrastructure_keys import KEYS_FORMAT, load_keys

    path = tmp_path / "infra.pem"
    path.write_bytes(pem)
    with pytest.raises(InputError, match="is a PEM key, not an infrastructure keys file") as refused:
        load_keys(path)
    assert KEYS_FORMAT in str(refused.value) and str(path) in str(refused.value)
