"""`usine pay run --engine spark` (issue 14): on Spark ``local[2]``, the same files give the DuckDB engine's outputs.

Two runs over one ledger per engine (the second with new events, repeats of the first file's, an
edited segment and a last line without its end; files read in several Spark splits), every refusal
reason intake has, a revoked label, an installation that disagrees with itself, and a third run that
continues a Spark ledger on DuckDB (the event store is one format). Equal means: the same run
statistics, refusal reports byte for byte, ledger state (payments with their proofs, installations,
recorded events), orders, proofs and totals, and the summary but for paths and times.

One Spark session (``local[2]``) for the module's tests, marked slow: on the shared 2-core machine 1.9 min
at load average 14, 4.7 min at 20 (most of it Spark's fixed cost per job on a few dozen lines, and the JVM's start).
Without pyspark or Java the tests skip saying so, and fail under CI=true.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformity.segments import write_sealed
from tests.helpers import required
from tests.payments.builders import (
    AS_OF,
    INFRA,
    SEGMENT_LINES,
    T0,
    event,
    events_for,
    line_of,
    modified,
    revocation,
)
from tests.payments.mixed import DAY, A, B, first_file, outputs, workspace
from tests.payments.mixed import run as mixed_run
from tests.payments.workspace import Workspace, ledger_state

#: ./test runs with --dist loadgroup: the module's tests share one worker, so one JVM
pytestmark = pytest.mark.xdist_group("spark")

MASTER = "local[2]"


@pytest.mark.slow
def test_spark_and_duckdb_give_the_same_payments_refusals_and_totals(spark: Any, tmp_path: Path) -> None:
    ws, first, second = workspace(tmp_path)
    # "batched": DuckDB in batches of one segment (a file is one Spark job: what one batch finds of an earlier one,
    # the same data counted, Spark finds inside the file)
    ledgers = {e: tmp_path / e / "ledger.sqlite3" for e in ("duckdb", "spark", "batched")}
    results: dict[str, list[dict[str, Any]]] = {"duckdb": [], "spark": [], "batched": []}
    for n, files in enumerate(((first,), (second,)), start=1):
        for engine, ledger in ledgers.items():
            out = tmp_path / engine / f"out{n}"
            every = {"commit_every": SEGMENT_LINES} if engine == "batched" else {}
            results[engine].append(outputs(out, mixed_run(ws, files, ledger, out, "duckdb" if engine == "batched"
                                                          else engine, MASTER, **every)))
            if n == 1 and engine == "spark":  # a copy of the Spark ledger after run 1, for run 3 on DuckDB
                shutil.copytree(ledger.parent, tmp_path / "mixed", ignore=shutil.ignore_patterns("out*"))
        assert ledger_state(ledgers["spark"]) == ledger_state(ledgers["duckdb"]), f"ledgers differ after run {n}"
        assert ledger_state(ledgers["batched"]) == ledger_state(ledgers["duckdb"]), f"ledgers differ after run {n}"
        for key in results["duckdb"][-1]:
            assert results["spark"][-1][key] == results["duckdb"][-1][key], f"run {n}: {key} differs"
            if key != "batches":
                assert results["batched"][-1][key] == results["duckdb"][-1][key], f"run {n}, batched: {key} differs"
    # the files hold what the test means to compare: every refusal reason of intake, payments, after-payment
    one, two = results["duckdb"]
    reasons_one = json.loads(one["refusals.json"])["counts"]["event"]
    assert set(reasons_one) == {"conflicting-duplicate", "duplicate-data", "duplicate-event", "event-unsigned", "future-dated",
                                "inconsistent-installation", "invalid-data", "label-revoked", "malformed",
                                "no-label", "not-proof-of-use", "outside-window", "source-untrusted", "unknown-wave",
                                "wrong-envelope"}
    assert one["stats"]["paid"] == 2 and one["stats"]["other_wave"] == 1
    assert two["stats"]["paid"] == 1 and two["stats"]["after_payment"] == 2
    assert {"event-segment-mismatch", "conflicting-duplicate", "duplicate-data"} <= set(
        json.loads(two["refusals.json"])["counts"]["event"])
    # a Spark ledger continued on DuckDB: the same as DuckDB all along
    mixed = tmp_path / "mixed" / "ledger.sqlite3"
    third = outputs(tmp_path / "mixed" / "out2", mixed_run(ws, (second,), mixed, tmp_path / "mixed" / "out2", "duckdb"))
    assert ledger_state(mixed) == ledger_state(ledgers["duckdb"])
    assert third == two


@pytest.mark.slow
def test_spark_and_duckdb_give_the_same_outputs_on_a_parquet_file(spark: Any, tmp_path: Path) -> None:
    """A Parquet events file (rows in row groups of 4, read in several Spark splits): every JSON object of the first
    file, a quoted and escaped site name, nulls (absent attributes); then the same file again (all duplicates)."""
    from conformity.payments import parquet

    ws = Workspace(tmp_path)
    ws.label()
    medix = ws.label(vendor="medi", software="medix", versions=("2.0",))
    ws.revoke(revocation(medix["label_id"], T0 + 2 * DAY + dt.timedelta(hours=3), software="medix", version="2.0"))
    evs = [x for x in first_file() if isinstance(x, dict)]
    evs += [modified(event(B, T0 + 6 * DAY, 120), data__site__name='Saint-\u00c9loi "B"\\ \u0001\u2028'),
            modified(event(A, T0 + 7 * DAY, 63), subject=None), modified(event(A, T0, 64), data__wave=None),
            modified(event(A, T0, 65), data=None)]
    f = parquet.write_sealed(tmp_path / "events" / "e.parquet", evs, INFRA, row_group_size=4)
    assert pq_row_groups(f) > 4
    ledgers = {e: tmp_path / e / "ledger.sqlite3" for e in ("duckdb", "spark")}
    for n in (1, 2):
        got = {}
        for engine, ledger in ledgers.items():
            out = tmp_path / engine / f"out{n}"
            got[engine] = outputs(out, mixed_run(ws, (f,), ledger, out, engine, MASTER))
        assert ledger_state(ledgers["spark"]) == ledger_state(ledgers["duckdb"]), f"ledgers differ after run {n}"
        for key in got["duckdb"]:
            assert got["spark"][key] == got["duckdb"][key], f"run {n}: {key} differs"
        counts = json.loads(got["duckdb"]["refusals.json"])["counts"]["event"]
        if n == 1:
            assert got["duckdb"]["stats"]["paid"] == 2 and {"invalid-data", "label-revoked", "no-label"} <= set(counts)
        else:
            assert got["duckdb"]["stats"]["paid"] == 0 and set(counts) >= {"duplicate-event"}


def pq_row_groups(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_row_groups)


@pytest.mark.slow
@pytest.mark.parametrize("change", ["edited", "truncated"])
def test_a_file_changed_after_verification_pays_only_the_signed_bytes_on_spark_too(
        spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """The driver copies the file as it reads and hashes it, and the executors read the copy: a change after the
    sidecar was checked refuses the changed segment (truncated: the one the file now ends in), as on DuckDB."""
    from tests.payments.test_authentication import (
        SITE_A,
        SITE_B,
        _between_verification_and_reading,
        _changed_segment_refused,
        _edit_or_truncate,
    )

    ws = Workspace(tmp_path)
    ws.label()
    f = ws.events("e.jsonl", events_for(SITE_B, 5) + events_for(SITE_A, 7, first=10))  # segments of 4 lines
    _between_verification_and_reading(monkeypatch, _edit_or_truncate(change))
    stats = mixed_run(ws, (f,), ws.ledger, tmp_path / "out-changed", "spark", MASTER)
    assert stats.lines == (12 if change == "edited" else 10) and stats.unproven == (4 if change == "edited" else 2)
    assert stats.proofs[0].proven_segments == 2 and stats.proofs[0].proven_lines == 8
    _changed_segment_refused(ws, tmp_path / "out-changed", change)
    assert not list((tmp_path / "out-changed").glob(".scratch-*"))  # the copy went with the scratch folder


def test_spark_engine_without_java_says_what_why_and_how(tmp_path: Path) -> None:
    """No Java: exit 2 before the ledger is touched, naming what is missing, why, and how to install it."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        required("pyspark", "install the test extra: bash .ci/install.sh test")
    ws = Workspace(tmp_path)
    f = ws.events("e.jsonl", events_for(A, 2))
    env = {**os.environ, "USINE_HOME": str(tmp_path / "home"), "JAVA_HOME": str(tmp_path / "no-java")}
    done = subprocess.run([sys.executable, "-m", "conformity", *ws.args((f,), tmp_path / "out", AS_OF, "2026-W1"),
                           "--engine", "spark", "--spark-master", MASTER], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "--engine spark needs Java" in done.stderr and "default-jre-headless" in done.stderr
    assert not ws.ledger.exists()


@pytest.mark.slow
def test_spark_that_cannot_start_says_what_spark_said(spark: Any, tmp_path: Path) -> None:
    """A driver heap Spark refuses to start with: exit 2 before any event is read, one line saying what Spark said
    (its message, not the last frame of its Java stack: "at java.base/java.lang.Thread.run")."""
    ws = Workspace(tmp_path)
    ws.label()
    f = ws.events("e.jsonl", events_for(A, 2))
    env = {**os.environ, "USINE_HOME": str(tmp_path / "home"), "SPARK_DRIVER_MEMORY": "300m"}
    done = subprocess.run([sys.executable, "-m", "conformity", *ws.args((f,), tmp_path / "out", AS_OF, "2026-W1"),
                           "--engine", "spark", "--spark-master", MASTER], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    said = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert len(said) == 1 and said[0].startswith(f"error: --spark-master: Spark could not start on {MASTER}: "), said
    assert "Insufficient driver memory" in said[0] and "\tat " not in said[0], said
    assert not list((tmp_path / "out").glob(".scratch-*"))  # nothing left in --out (an empty .scratch-1 was)


@pytest.mark.slow
def test_long_and_junk_lines_are_refused_as_on_duckdb_without_the_driver_reading_them_whole(
        spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines just under, at and over ``MAX_LINE_BYTES`` (junk, events padded with spaces, CR LF ends, a blank one, one
    that is not UTF-8), a 24 MB line, and long junk appended after the last signed segment: the same payments and
    refusals on both engines. On Spark no line over the limit reaches the executors' copy or the driver, and the
    lines off the fast path come to the driver through Parquet files the executors write in the scratch folder, read a
    few rows at a time (not one collect nor Spark's results), in row groups of bounded size, removed after the file."""
    from conformity.payments import spark_engine
    from conformity.payments.intake import MAX_LINE_BYTES as MAX

    def padded(ev: dict[str, Any], size: int, end: bytes = b"") -> bytes:
        """The event's line with spaces to ``size`` bytes (``end`` included)."""
        line = line_of(ev).encode()
        return line + b" " * (size - len(line) - len(end)) + end

    junk = [b'{"junk":"' + b"x" * (size - 11) + b'"}' for size in (MAX - 1, MAX, MAX + 1, MAX + 2)]
    lines = [line_of(x).encode() for x in events_for(A, 6)] + junk + [
        padded(event(B, T0, 100), MAX),  # at the limit: the reference parser, counted
        padded(event(B, T0 + DAY, 101), MAX + 1, b"\r"),  # at the limit without its CR: counted
        padded(event(B, T0 + 2 * DAY, 102), MAX + 1),  # over: refused unread
        padded(event(B, T0 + 3 * DAY, 103), MAX + 2, b"\r"),  # over without its CR too
        b" " * (MAX + 10),  # blank, however long
        b"\xff" * (MAX + 5),  # not UTF-8 and over the limit
        b'{"junk":"' + b"y" * (24 << 20) + b'"}',  # a very long line
        *(line_of(x).encode() for x in events_for(B, 3, start=T0 + 4 * DAY, first=104)),
    ]
    ws = Workspace(tmp_path)
    ws.label()
    f = write_sealed(tmp_path / "events" / "junk.jsonl", lines, INFRA, every=SEGMENT_LINES)
    with open(f, "ab") as fh:  # appended after sealing: event-unsigned, and a last line without its end
        fh.write(b'{"junk":"' + b"z" * (3 << 20) + b'"}\n' + b"z" * MAX + b"\r")

    seen: dict[str, Any] = {"data": 0, "iterated": False, "copy": 0, "spilled": [], "groups": []}
    slow_path, copy_lines = spark_engine._slow_path, spark_engine.SparkEngine._copy_lines
    read_rest = spark_engine._read_rest

    def watched_slow_path(rest: Any, held: dict[int, bytes | None]) -> Any:
        seen["iterated"] |= not isinstance(rest, list)
        rows = list(rest)
        seen["data"] = max([seen["data"], *(len(r[2]) for r in rows if r[2] is not None)])
        return slow_path(rows, held)

    def watched_copy_lines(self: Any, path: Path) -> Path:
        copy = copy_lines(self, path)
        with open(copy, "rb") as fh:
            seen["copy"] = max(len(line) for line in fh)
        return copy

    def watched_read_rest(folder: Path) -> Any:
        import pyarrow.parquet as pq

        seen["spilled"].append(folder)
        for part in sorted(folder.glob("part-*.parquet")):
            meta = pq.ParquetFile(part).metadata
            seen["groups"] += [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)]
        return read_rest(folder)

    monkeypatch.setattr(spark_engine, "_slow_path", watched_slow_path)
    monkeypatch.setattr(spark_engine, "_read_rest", watched_read_rest)
    monkeypatch.setattr(spark_engine, "REST_GROUP_BYTES", 2 << 20)  # this file's rest: several row groups
    monkeypatch.setattr(spark_engine.SparkEngine, "_copy_lines", watched_copy_lines)
    monkeypatch.setattr(spark_engine, "COLLECT_BYTES", 1 << 20)  # this file's rest: a partition at a time
    monkeypatch.setattr(spark_engine, "SPLIT_BYTES", 2 << 20)  # a few splits (not one per 4 KiB of 1 MB lines)
    split = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "128m")  # Spark's default: bounded while the file is read
    try:
        got = {}
        for engine in ("duckdb", "spark"):
            out = tmp_path / engine / "out"
            got[engine] = outputs(out, mixed_run(ws, (f,), tmp_path / engine / "ledger.sqlite3", out, engine, MASTER))
        assert spark.conf.get("spark.sql.files.maxPartitionBytes") == "128m"  # the session's setting again
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", split)
    assert ledger_state(tmp_path / "spark" / "ledger.sqlite3") == ledger_state(tmp_path / "duckdb" / "ledger.sqlite3")
    for key in got["duckdb"]:
        assert got["spark"][key] == got["duckdb"][key], f"{key} differs"
    assert seen["iterated"] and MAX - 1 <= seen["data"] <= MAX + 1 and seen["copy"] <= MAX + 2
    assert len(seen["spilled"]) == 1 and not seen["spilled"][0].exists()  # through Parquet, then removed
    assert len(seen["groups"]) >= 3 and max(seen["groups"]) <= (2 << 20) + MAX + 2, seen["groups"]
    one = got["duckdb"]
    counts = json.loads(one["refusals.json"])["counts"]["event"]
    assert counts == {"malformed": 6, "wrong-envelope": 2, "event-unsigned": 2}, counts
    assert one["refusals.csv"].count(f"line longer than {MAX} bytes".encode()) == 6
    assert one["stats"]["lines"] == len(lines) - 1 + 2 and one["stats"]["counted"] == 6 + 2 + 3
    assert one["stats"]["paid"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["java-exception", "out-of-memory", "connection-lost"])
def test_a_spark_failure_ends_the_run_saying_so_with_the_ledger_and_outputs_untouched(
        spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    """Spark failing in the middle of a file (installations already created in its ledger transaction): a UsineError
    (exit 1, said by the command as one line) naming Spark, what it said and what to try, not a Java traceback; the
    ledger holds nothing of the run (a DuckDB run on it then gives a fresh ledger's result), no output is written."""
    from py4j.protocol import Py4JNetworkError

    from conformity.errors import UsineError
    from conformity.payments import spark_engine

    def fail(self: Any) -> None:
        if failure == "java-exception":  # a real Java exception through py4j
            self.spark.sparkContext._jvm.java.lang.Integer.parseInt("not a number")
        elif failure == "out-of-memory":  # a real failed Spark job, saying what an executor out of memory says
            self.spark.sql("SELECT raise_error('java.lang.OutOfMemoryError: Java heap space')").collect()
        else:
            raise Py4JNetworkError("Answer from Java side is empty")

    ws = Workspace(tmp_path)
    ws.label()
    f = ws.events("e.jsonl", events_for(A, 8))
    monkeypatch.setattr(spark_engine.SparkEngine, "_judged_refusals_spark", fail)
    with pytest.raises(UsineError) as caught:
        mixed_run(ws, (f,), ws.ledger, tmp_path / "out", "spark", MASTER)
    err = caught.value
    said = {"java-exception": 'NumberFormatException: For input string: "not a number"',
            "out-of-memory": "java.lang.OutOfMemoryError: Java heap space",
            "connection-lost": "the connection to Spark's JVM was lost"}[failure]
    assert type(err) is UsineError and err.exit_code == 1 and err.__suppress_context__
    assert str(err).startswith(f"Spark failed on {f}: ") and said in str(err), str(err)
    assert "SPARK_DRIVER_MEMORY" in str(err) and "\n" not in str(err) and "\tat " not in str(err)
    assert ledger_state(ws.ledger) == {"payments": [], "installations": [], "events": ledger_state(ws.ledger)["events"]}
    assert not ledger_state(ws.ledger)["events"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # no output, no scratch folder left
    assert spark.range(3).count() == 3  # the test's session still works (the run did not stop what it did not start)
    monkeypatch.undo()
    again = outputs(tmp_path / "again", mixed_run(ws, (f,), ws.ledger, tmp_path / "again", "duckdb"))
    fresh = outputs(tmp_path / "fresh", mixed_run(ws, (f,), tmp_path / "fresh.sqlite3", tmp_path / "fresh", "duckdb"))
    assert again["stats"] == fresh["stats"] and again["stats"]["paid"] == 1
    assert ledger_state(ws.ledger) == ledger_state(tmp_path / "fresh.sqlite3")


@pytest.mark.slow
def test_a_file_stopped_by_a_failure_releases_what_spark_cached_without_planning_it_again(
        spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure in the middle of a file (a Java exception once its installations are created, before Spark computed
    the last frames the file cached): its cached frames are released without Spark's optimizer running, nothing stays
    cached and the session still works. Released the first cached first, each frame the uncomputed ones depend on made
    Spark plan them again as the whole file's query (``CacheManager.recacheByCondition``): minutes of a full 1 GiB
    driver heap, and an OutOfMemoryError in one of Spark's threads stopped the session the module's tests share."""
    from conformity.errors import UsineError
    from conformity.payments import spark_engine

    def fail(self: Any) -> None:
        self.spark.sparkContext._jvm.java.lang.Integer.parseInt("not a number")

    rules = spark.sparkContext._jvm.org.apache.spark.sql.catalyst.rules.RuleExecutor
    frames, planned = type(spark.range(1)), []
    unpersist = frames.unpersist

    def watched_unpersist(self: Any, blocking: bool = False) -> Any:
        runs = rules.getCurrentMetrics().numRuns()
        try:
            return unpersist(self, blocking)
        finally:
            planned.append(rules.getCurrentMetrics().numRuns() - runs)  # the optimizer's rules run meanwhile

    ws = Workspace(tmp_path)
    ws.label()
    f = ws.events("e.jsonl", events_for(A, 8))
    monkeypatch.setattr(spark_engine.SparkEngine, "_judged_refusals_spark", fail)
    monkeypatch.setattr(frames, "unpersist", watched_unpersist)
    with pytest.raises(UsineError):
        mixed_run(ws, (f,), ws.ledger, tmp_path / "out", "spark", MASTER)
    assert len(planned) >= 5 and not any(planned), planned  # before: [354, 354, 354, 354, 120] rule runs
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()
    assert spark.range(3).count() == 3


#: the child of ``test_a_spark_session_that_stopped_or_lost_its_jvm_is_replaced``: its own JVM, which it breaks
_BROKEN_SESSIONS = """
import json, os, signal, sys, threading, time
from pathlib import Path
from conformity.payments.spark_engine import spark_session
from tests.payments.builders import events_for
from tests.payments.mixed import A, outputs, run
from tests.payments.workspace import Workspace

root, master = Path(sys.argv[1]), sys.argv[2]
ws = Workspace(root)
ws.label()
f = ws.events("e.jsonl", events_for(A, 8))
said = {}


def paid(name):
    out = root / name
    said[name] = outputs(out, run(ws, (f,), root / f"{name}.sqlite3", out, "spark", master))["stats"]


made = []  # a session made in another thread, as a service's worker may: the run uses it and leaves it running
threading.Thread(target=lambda: made.append(spark_session(master, root / "spark")[0])).start()
while not made:
    time.sleep(0.1)
paid("other-thread")
said["still-running"] = made[0].range(3).count() == 3
made[0].sparkContext._jsc.sc().stop()  # what Spark does after a fatal error in one of its threads (out of memory)
paid("stopped")
spark, _ = spark_session(master, root / "spark")
os.kill(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid(), signal.SIGKILL)  # the JVM gone
time.sleep(1)
paid("jvm-gone")
print(json.dumps(said))
"""


@pytest.mark.slow
def test_a_spark_session_that_stopped_or_lost_its_jvm_is_replaced(spark: Any, tmp_path: Path) -> None:
    """A process's Spark session that Spark stopped (as it does after an OutOfMemoryError in one of its threads) or
    whose JVM is gone is not handed to the next run (every call on it failed: "Cannot call methods on a stopped
    SparkContext"): the run starts a new one and pays as DuckDB does. A session of the process made in another
    thread is the run's session, left running after it (it was stopped as if the run had started it). In a child
    process: it breaks its own JVM, not the module's."""
    ws = Workspace(tmp_path / "duckdb")
    ws.label()
    f = ws.events("e.jsonl", events_for(A, 8))
    expected = outputs(tmp_path / "out", mixed_run(ws, (f,), ws.ledger, tmp_path / "out", "duckdb"))["stats"]
    assert expected["paid"] == 1
    done = subprocess.run([sys.executable, "-c", _BROKEN_SESSIONS, str(tmp_path / "child"), MASTER],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    said = json.loads(done.stdout.splitlines()[-1])
    assert said.pop("still-running") is True
    assert said == {"other-thread": expected, "stopped": expected, "jvm-gone": expected}, said


@pytest.mark.slow
def test_spark_and_duckdb_agree_on_lines_that_parse_differently(spark: Any, tmp_path: Path) -> None:
    """One file of lines parsers disagree on (``tests.payments.hostile``: a member twice, escapes, Unicode spellings,
    numbers past 64 bits, ``1.0``, times with offsets, fractions, leap seconds, before 1970 and past 9999, a BOM, CR LF,
    NUL bytes, lines at the length bound, in several Spark splits): the same outputs on both engines, the reference
    parser's meaning."""
    from tests.payments.hostile import hostile_files

    ws = Workspace(tmp_path)
    ws.label()
    files = hostile_files(ws)
    got = {}
    folder = {e: tmp_path / e for e in ("duckdb", "batched")} | {"spark": tmp_path / "spark[1]{a,b}\\*"}  # no pattern
    for engine in ("duckdb", "spark", "batched"):  # batched: DuckDB in batches of one segment
        out = folder[engine] / "out"
        every = {"commit_every": SEGMENT_LINES} if engine == "batched" else {}
        got[engine] = outputs(out, mixed_run(ws, files, folder[engine] / "ledger.sqlite3", out,
                                             "duckdb" if engine == "batched" else engine, MASTER, **every))
    for engine in ("spark", "batched"):
        assert ledger_state(folder[engine] / "ledger.sqlite3") == ledger_state(folder["duckdb"] / "ledger.sqlite3")
        for key in got["duckdb"]:
            assert key == "batches" or got[engine][key] == got["duckdb"][key], f"{engine}: {key} differs"
    counts = json.loads(got["duckdb"]["refusals.json"])["counts"]["event"]
    assert got["duckdb"]["stats"]["paid"] == 3  # E, F, and G from the file named .gz
    assert {"malformed", "invalid-data", "wrong-envelope", "duplicate-event", "conflicting-duplicate"} <= set(counts)
