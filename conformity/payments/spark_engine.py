"""Intake as set operations on Apache Spark (``usine pay run --engine spark``): the DuckDB engine's computation
on any Spark master, with the same outputs.

The split is the DuckDB engine's (``engine``): what is per event runs on the executors as DataFrame and
Spark SQL operations; what is per file, per rule or per rare line runs once on the driver and is joined
(broadcast):

* **executors**: reading the events file, from the copy the driver wrote in the scratch folder as it read and
  hashed it (``loader.batches``, settling each segment: the bytes parsed are the bytes hashed; a Parquet
  file's rows, ``parquet.take``, each row as the JSON line of its non-null attributes), line numbers from
  each split's position, the range join of each line to its signed span (bucketed by line number), parsing
  and validating the canonical lines (``from_json``; a line is on the fast path only if ``to_json`` of the
  values read gives it back byte for byte, with the DuckDB engine's rules as Spark predicates), the content
  digest, the join to the events the store already holds (its Parquet files) and the window over (source,
  id) inside the file, the range join to the verdicts, the outcomes, each installation's best window and
  earliest completion, and the write of the file's outcomes as one Parquet file of the event store;
* **driver**: the segments' signatures (``authenticate``: spans) and the file's hash as it copies it (a line longer
  than ``MAX_LINE_BYTES``, refused unread, stands in the copy as one byte: no executor reads it), the reference parser
  for the lines off the fast path (``intake.parse_event``; when they are many bytes, ``COLLECT_BYTES``, the executors
  write them as Parquet in the scratch folder and the driver reads it with pyarrow a few rows at a time, never
  through Spark's results nor the driver's JVM heap), ``WaveRules.evaluate`` once per distinct combination and interval
  (``Engine._intervals``), the details of refusals per distinct value, and the transactional SQLite ledger
  (installations created and updated in one transaction with the store file that counted them), and settlement.
  Only per-installation aggregates (with the few events proving each payment), the distinct combinations and the
  refusals come back to it; the refusal report is written by the DuckDB engine's own COPYs so the two engines'
  reports are the same bytes.

An events file is one Spark job and one ledger transaction (``--commit-every`` bounds the DuckDB engine's
batches, not this one's). On a cluster, the events files, the ledger's folder (its event store) and
``--out`` must be on a filesystem the driver and every executor mount at the same path.

A failure of Spark (a Java exception, the JVM out of memory, its connection lost) stops the run with a
``UsineError`` naming Spark, what it said and what to try (more memory), not a Java traceback; the file's ledger
transaction is rolled back and no output is written, as for any error of a run.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from conformity.errors import InputError, UsineError
from conformity.payments import parquet, reasons
from conformity.payments.authenticate import FileProof
from conformity.payments.eligibility import WaveRules
from conformity.payments.engine import (
    _REFUSED,
    COMBO_ATTRIBUTES,
    COMBO_KEY_COLUMNS,
    DEFAULT_MEMORY_BYTES,
    EVENT_COLUMNS,
    INSTALLATION_DIFFERS,
    MISMATCH_ATTRIBUTES,
    UNCHANGED,
    WHEN,
    Engine,
    data_detail,
    early_detail,
    event_row,
    installation_updates,
    mismatch_detail,
    same_combination,
    same_site,
    site_key,
)
from conformity.payments.envelope import EVENT_TYPE, format_us
from conformity.payments.files import copy_file
from conformity.payments.intake import MAX_LINE_BYTES, Rejected, parse_event
from conformity.payments.labelbook import LabelBook
from conformity.payments.ledger import Ledger
from conformity.payments.loader import Batch, batches
from conformity.payments.report import RefusalReport
from conformity.payments.store import EventStore, finish_file

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

DEFAULT_MASTER = "local[*]"
#: lines per bucket of the span join (a span is joined to the buckets it overlaps, then by range)
BUCKET = 4096
#: the most bytes of the events file one Spark partition reads (``spark.sql.files.maxPartitionBytes`` while the file
#: is read, when it is larger): what a task caches and parses at once, and the lines off the fast path that come to
#: the driver at once (``COLLECT_BYTES``), are bounded by it and one line (at most ``MAX_LINE_BYTES``)
SPLIT_BYTES = 16 << 20
_SPLIT_CONF = "spark.sql.files.maxPartitionBytes"
#: the lines off the fast path come to the driver in one collect when they hold at most this many bytes, else the
#: executors write them as Parquet in the scratch folder (row groups of about ``REST_GROUP_BYTES``) and the driver reads
#: it ``REST_BATCH_ROWS`` rows at a time (pyarrow: a row group in memory at once, none in the JVM's heap)
COLLECT_BYTES = 16 << 20
REST_GROUP_BYTES = 8 << 20
REST_BATCH_ROWS = 16
#: what stands in the executors' copy for a line longer than ``MAX_LINE_BYTES`` (``SparkEngine._write_lines``)
TOO_LONG = b"\x00"
_GLOB = re.compile(r"[\\\[\]{}*?]")  # what Hadoop's glob patterns give a meaning to
_BOM = b"\xef\xbb\xbf"  # UTF-8's byte order mark, which Spark's text reader drops at the start of a file
_NOT_BLANK = re.compile(rb"[^ \t\n\r\x0b\x0c]")  # what bytes.strip() keeps
_JAVA = "a Java 17 runtime (Debian: `apt-get install default-jre-headless`)"
_MEMORY = ("give Spark more memory (SPARK_DRIVER_MEMORY=4g in the environment of `usine pay run`: on a local[N] master "
           "the executors run in the driver's JVM; on a cluster spark.driver.memory and spark.executor.memory in "
           "$SPARK_CONF_DIR/spark-defaults.conf), or use the DuckDB engine (--engine duckdb)")
_INSTALL = f"install the Spark extra (`pip install 'usine[spark]'`, or `bash .ci/install.sh test` in a checkout) and {_JAVA}"

_SCHEMA = (
    "`specversion` STRING, `type` STRING, `source` STRING, `id` STRING, `time` STRING, `subject` STRING, "
    "`datacontenttype` STRING, `dataschema` STRING, `data` STRUCT<`installation_id`: STRING, `vendor_id`: STRING, "
    "`software`: STRUCT<`id`: STRING, `name`: STRING, `version`: STRING, `registration_id`: STRING>, "
    "`site`: STRUCT<`id`: STRING, `size`: STRING, `name`: STRING>, `wave`: STRING, `category`: STRING, "
    "`kind`: STRING, `document_type`: STRING, `bytes`: BIGINT, `sha256`: STRING, `reference`: STRING>")
#: intake's canonical form (sorted keys, compact, not ASCII-escaped) as a struct whose JSON is that form on the
#: fast path (engine._CANONICAL)
_CANONICAL = (
    "named_struct('data', named_struct('bytes', j.data.bytes, 'category', j.data.category, 'document_type', "
    "j.data.document_type, 'installation_id', j.data.installation_id, 'kind', j.data.kind, 'reference', "
    "j.data.reference, 'sha256', j.data.sha256, 'site', named_struct('id', j.data.site.id, 'name', j.data.site.name, "
    "'size', j.data.site.size), 'software', named_struct('id', j.data.software.id, 'name', j.data.software.name, "
    "'registration_id', j.data.software.registration_id, 'version', j.data.software.version), 'vendor_id', "
    "j.data.vendor_id, 'wave', j.data.wave), 'datacontenttype', j.datacontenttype, 'dataschema', j.dataschema, "
    "'id', j.id, 'source', j.source, 'specversion', j.specversion, 'subject', j.subject, 'time', j.time, "
    "'type', j.type)")
_JSON_OPTIONS = "map('ignoreNullFields', 'false')"
_TIME_US = ("unix_micros(coalesce(try_to_timestamp(j.time, \"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'\"), "
            "try_to_timestamp(j.time, \"yyyy-MM-dd'T'HH:mm:ss'Z'\")))")
_FAST_SELECT = (
    "line, span, j.source AS source, j.id AS id, " + _TIME_US + " AS time_us, "
    f"unhex(substr(sha2(cast(to_json({_CANONICAL}, {_JSON_OPTIONS}) AS BINARY), 256), 1, 32)) AS digest, "
    "value AS body, j.data.installation_id AS inst_ref, j.data.vendor_id AS vendor, j.data.software.id AS sw_id, "
    "j.data.software.name AS sw_name, j.data.software.version AS sw_version, j.data.site.id AS site_id, "
    "j.data.site.size AS site_size, j.data.site.name AS site_name, j.data.wave AS wave, j.data.category AS category, "
    "j.data.kind AS kind, j.data.document_type AS doc_type, j.data.sha256 AS sha256")
#: a refusal as Spark computes it: ``detail`` holds ``WHEN`` for the event's time when ``timed``
_REFUSAL_FIELDS = ("line", "reason", "detail", "timed", "time_us", "source", "event_id", "wave", "vendor_id",
                   "software_id", "software_version", "site_id")


def _rules() -> list[Column]:
    """engine._RULES as Spark predicates (Java regular expressions anchored with ``\\z``; lengths in bytes)."""
    from pyspark.sql import functions as F

    def col(name: str) -> Column:
        return F.col("j." + name)

    def full(name: str, pattern: str) -> Column:
        return col(name).rlike("^(?:" + pattern + ")\\z")

    def between(name: str, low: int, high: int) -> Column:
        return F.octet_length(col(name)).between(low, high)

    free = ("id", "data.installation_id", "data.vendor_id", "data.software.id", "data.software.name",
            "data.software.version", "data.software.registration_id", "data.site.id", "data.site.name",
            "data.reference")
    return [
        col("specversion") == "1.0", col("type") == EVENT_TYPE, full("source", "[\\x21-\\x7e]+"),
        F.octet_length(col("id")) > 0,
        full("time", "[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{3})?Z"),
        col("subject") == col("data.installation_id"), col("datacontenttype") == "application/json",
        full("dataschema", "[A-Za-z][A-Za-z0-9+.-]*:[\\x21-\\x7e]+"),
        between("data.installation_id", 1, 100), between("data.vendor_id", 1, 100),
        between("data.software.id", 1, 100), between("data.software.name", 1, 200),
        between("data.software.version", 1, 50), between("data.software.registration_id", 0, 100),
        full("data.site.id", "[0-9A-Z][0-9A-Z._-]{0,49}"), full("data.site.size", "[A-Z][A-Z0-9_]*"),
        between("data.site.name", 0, 200), full("data.wave", "[0-9]{4}-W[0-9]+"),
        full("data.category", "[A-Z][A-Z0-9_]*"), full("data.kind", "[a-z][a-z0-9_]*"),
        col("data.document_type").isNull() | full("data.document_type", "[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"),
        col("data.bytes") >= 0, full("data.sha256", "[0-9a-f]{64}"), between("data.reference", 1, 300),
        ~F.concat(*(col(n) for n in free)).rlike("[\\x00-\\x1f]"),
    ]


def _literal(path: Path) -> str:
    """``path`` for Spark's readers, which read a path as a glob pattern (Hadoop's): its pattern characters escaped,
    so that a folder or file named ``l[1]`` or ``{a,b}`` (a ledger's folder, ``--out``) is that folder or file."""
    return _GLOB.sub(r"\\\g<0>", str(path))


def _q(value: str) -> str:
    """A Spark SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _spark_errors() -> tuple[type[BaseException], ...]:
    """What a failure of Spark raises in Python: a Java exception or a lost JVM (py4j), pyspark's own errors, a socket."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    return Py4JError, PySparkException, ConnectionError


def _why(exc: BaseException) -> str:
    """What Spark said, in one line: an OutOfMemoryError when there is one, else the first line of the Java exception
    (never its stack), or that the connection to the JVM is gone."""
    from py4j.protocol import Py4JJavaError, Py4JNetworkError

    if isinstance(exc, Py4JNetworkError | ConnectionError):
        return "the connection to Spark's JVM was lost (it stopped: often out of memory)"
    try:
        text = str(exc)  # a Py4JJavaError asks the JVM for its text: it may be gone
    except Exception:  # any failure here is the JVM being gone
        text = getattr(exc, "errmsg", "") or type(exc).__name__
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.lstrip().startswith(("at ", "..."))]
    oom = [x for x in lines if "OutOfMemoryError" in x]
    if oom:
        why = oom[0]
    elif isinstance(exc, Py4JJavaError):
        why = next((x.lstrip(": ") for x in lines if x.startswith(":")), lines[-1] if lines else type(exc).__name__)
    else:  # pyspark's own, or a Java exception it converted (its class name, then its message)
        why = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    why = why[why.find("java.lang.OutOfMemoryError"):] if "java.lang.OutOfMemoryError" in why else why
    return why if len(why) <= 300 else why[:297] + "..."


@contextlib.contextmanager
def _spark_failures(what: str, kept: str, failed: Callable[[], None] | None = None) -> Iterator[None]:
    """A failure of Spark inside as a ``UsineError`` (the exit code of a failed run) that names Spark, what it said,
    what the ledger kept and what to try, without the Java traceback (``failed`` is told first)."""
    try:
        yield
    except _spark_errors() as exc:
        if failed is not None:
            failed()
        raise UsineError(f"Spark failed {what}: {_why(exc)}; {kept}, and no output was written to --out. "
                         f"Try again after you {_MEMORY}") from None


def require_spark() -> None:
    """InputError (exit 2) saying what is missing, why and how to install it, unless pyspark and Java are here."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise InputError(f"--engine spark needs pyspark (Apache Spark's Python API), which is not installed: {_INSTALL}",
                         where="--engine") from None
    home = os.environ.get("JAVA_HOME")
    java = Path(home) / "bin" / "java" if home else None
    if java is not None and not os.access(java, os.X_OK):
        raise InputError(f"--engine spark needs Java (Spark runs on the JVM), but JAVA_HOME={home} has no bin/java: "
                         f"{_INSTALL}, or unset JAVA_HOME", where="--engine")
    if java is None and shutil.which("java") is None:
        raise InputError(f"--engine spark needs Java (Spark runs on the JVM) and no `java` is on PATH nor JAVA_HOME "
                         f"set: {_INSTALL}", where="--engine")


def _forget_dead_session() -> None:
    """Stop and forget this process's Spark session when Spark stopped it or its JVM is gone, so that the builder
    starts a new one (and a new JVM). Spark stops its context itself after a fatal error in one of its threads (an
    OutOfMemoryError), and pyspark would hand that session out again: every call on it then fails ("Cannot call
    methods on a stopped SparkContext"), the next run of a long-lived process too."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    sc = SparkContext._active_spark_context
    if sc is None:
        return
    try:
        if not sc._jsc.sc().isStopped():
            return
        gone = False
    except _spark_errors():  # no answer: the JVM is gone
        gone = True
    session = SparkSession._instantiatedSession
    with warnings.catch_warnings(), contextlib.suppress(*_spark_errors()):
        warnings.simplefilter("ignore", RuntimeWarning)  # pyspark's "Unable to cleanly shutdown Spark JVM process"
        if session is not None and not gone:
            session.stop()  # the context, and the JVM's default and active sessions
        else:
            sc.stop()
    # what the stops above do when the JVM answers; when it is gone, its gateway too (the builder launches a JVM)
    SparkSession._instantiatedSession = SparkSession._activeSession = None
    if gone:
        with contextlib.suppress(Exception):
            sc._accumulatorServer.shutdown()
        gateway = SparkContext._gateway
        SparkContext._active_spark_context = SparkContext._gateway = SparkContext._jvm = None
        with contextlib.suppress(Exception):
            if gateway is not None:
                gateway.shutdown()


def spark_session(master: str, scratch: Path) -> tuple[SparkSession, bool]:
    """The Spark session on ``master`` (the one of this process when it is on that master) and whether this call
    started it; a session Spark stopped, or whose JVM is gone, is replaced by a new one (``_forget_dead_session``)."""
    require_spark()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    _forget_dead_session()
    active = None
    if SparkContext._active_spark_context is not None:  # this process's, made in this thread or another one
        active = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    if active is not None:
        if active.sparkContext.master != master:
            raise InputError(f"a Spark session on {active.sparkContext.master} is already running in this process; "
                             f"it cannot also run on {master}", where="--spark-master")
        spark, started = active, False
    else:
        builder = (SparkSession.builder.master(master).appName("usine pay run")
                   .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.session.timeZone", "UTC").config("spark.local.dir", str(scratch / "spark"))
                   .config("spark.sql.warehouse.dir", str(scratch / "warehouse")))
        try:
            spark = builder.getOrCreate()
        except Exception as exc:  # the JVM did not start (a Java too old, a bad master URL, too little memory): say
            why = _why(exc)  # so in one line, what Spark said (not the last line of its stack)
            raise InputError(f"Spark could not start on {master}: {why}; it needs {_JAVA}, a reachable master and "
                             "a driver heap of at least 512 MiB (SPARK_DRIVER_MEMORY, default 1g)",
                             where="--spark-master") from exc
        spark.sparkContext.setLogLevel("ERROR")
        started = True
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.ansi.enabled", "false")  # try_* semantics: a value that does not convert is NULL
    if started and master.startswith("local"):  # one machine: a few shuffle partitions per core, not 200
        spark.conf.set("spark.sql.shuffle.partitions", str(4 * spark.sparkContext.defaultParallelism))
    return spark, started


class SparkEngine(Engine):
    """The intake of one run on a Spark session; the ledger, the report and settlement as the DuckDB engine's."""

    def __init__(self, ledger: Ledger, store: EventStore, rules: WaveRules, book: LabelBook,
                 label_rows: dict[str, int], known_waves: frozenset[str], kinds: frozenset[str], as_of_us: int,
                 run_id: int, report: RefusalReport, scratch: Path, progress: Callable[[str], None],
                 master: str = DEFAULT_MASTER, memory: int = DEFAULT_MEMORY_BYTES):
        scratch.mkdir(parents=True, exist_ok=True)
        self._failed = False
        self.spark, self._started = spark_session(master, scratch)
        super().__init__(ledger, store, rules, book, label_rows, known_waves, kinds, as_of_us, run_id, report,
                         scratch, progress, memory=memory)
        thresholds = {c: rules.threshold(c) for c in self.spans_by_category}
        with self._failures("while starting the run", "the ledger holds no event of this run"):
            self.rules_df = self.spark.createDataFrame([(c, n, s) for c, (n, s) in sorted(thresholds.items())],
                                                       "category STRING, n BIGINT, span BIGINT")
        self.ns = sorted({n for n, _ in thresholds.values()})
        #: per file, the events it judged again to the refusal the store holds (``Engine._record``): no store row
        self.judged_again_files: list[Path] = []

    def _failures(self, what: str, kept: str) -> contextlib.AbstractContextManager[None]:
        """``_spark_failures``, remembering that Spark failed (``close`` then cleans up what it still can)."""
        return _spark_failures(what, kept, lambda: setattr(self, "_failed", True))

    def close(self) -> None:
        super().close()
        # after a failure the JVM may be gone: its temporary views and its stop are tried, never raise over the error
        with contextlib.suppress(*_spark_errors()) if self._failed else contextlib.nullcontext():
            for name in [t.name for t in self.spark.catalog.listTables() if t.isTemporary and t.name.startswith("u_")]:
                self.spark.catalog.dropTempView(name)
        if self._started:
            with contextlib.suppress(*_spark_errors()) if self._failed else contextlib.nullcontext():
                self.spark.stop()

    def _load_seen(self) -> None:
        """Nothing on the driver: the executors join each file's keys to the store's Parquet files."""

    # ------------------------------------------------------------------ helpers
    def _view(self, name: str, df: DataFrame, persist: bool = False) -> DataFrame:
        if persist:
            df = df.persist()
            self._persisted.append(df)
        df.createOrReplaceTempView(name)
        return df

    def _sql(self, query: str) -> DataFrame:
        return self.spark.sql(query)

    def _frame(self, rows: list[tuple[Any, ...]], schema: str) -> DataFrame:
        return self.spark.createDataFrame(rows, schema)

    # ------------------------------------------------------------------ one file
    def file(self, path: Path, file_id: int, proof: FileProof, min_lines: int) -> None:
        self.path, self.file_id, self.proof = path, file_id, proof
        self._persisted: list[DataFrame] = []
        self._copies: list[Path] = []
        self._folders: list[Path] = []
        try:
            with self._failures(f"on {path}", "none of its events was recorded in the ledger (the run's earlier files "
                                "were)"):
                self._file(path)
        finally:
            # the last cached first: Spark plans again a cached frame it has not computed yet (a file stopped by a
            # failure) when one it depends on is released before it, as the whole file's query, which fills the heap
            with contextlib.suppress(*_spark_errors()) if self._failed else contextlib.nullcontext():
                for df in reversed(self._persisted):
                    df.unpersist()
            for copy in self._copies:
                copy.unlink(missing_ok=True)
            for folder in self._folders:
                shutil.rmtree(folder, ignore_errors=True)

    def _copy_lines(self, path: Path) -> Path:
        """A copy of the JSON-lines file in the scratch folder (shared with the executors), written as it is read in
        batches of whole segments, each hashed and settled on the way (``loader.batches``, the DuckDB engine's reading):
        the lines the executors parse are the bytes hashed, whatever happens to the file meanwhile."""
        copy = copy_file(self.scratch, path.name)
        with open(copy, "wb") as out:
            for batch in batches(path, self.proof, min_lines=1 << 62):
                self._write_lines(out, batch)
        return copy

    def _write_lines(self, out: IO[bytes], batch: Batch) -> None:
        """``batch``'s lines into the copy, but two kinds of line the executors must not read as they are, each standing
        in the copy as ``TOO_LONG`` with its end, its number in ``self.held`` (a blank one as a blank):

        * a line longer than ``MAX_LINE_BYTES`` (without its end): refused unread whatever it holds (``malformed``, as
          by the DuckDB engine's ``register_lines``; held as None), so that no executor reads, caches or sends an
          unbounded line;
        * the file's first line when it starts with a UTF-8 byte order mark: Spark's text reader (Hadoop's) drops the
          mark at the start of a file, so the executors would read another line than the one signed, which the
          reference parser refuses (``malformed``) and the DuckDB engine with it; held as its bytes (one line, at most
          ``MAX_LINE_BYTES``), for the driver's reference parser."""
        starts = batch.starts()
        data = batch.data
        bom = batch.first == 1 and batch.count > 0 and data.startswith(_BOM)
        marked = np.flatnonzero(batch.ends - starts > MAX_LINE_BYTES).tolist()
        if not marked and not bom:
            out.write(data)
            return
        view, done = memoryview(data), 0
        for i in sorted({*marked, *((0,) if bom else ())}):
            b0, b1 = int(starts[i]), int(batch.ends[i])
            end = b1 - 1 if data[b1 - 1] == 10 else b1  # its text: without LF or CR LF (``_slow_path``)
            end -= 1 if end < b1 and end > b0 and data[end - 1] == 13 else 0
            blank = False
            if end - b0 > MAX_LINE_BYTES:
                blank = _NOT_BLANK.search(data, b0, end) is None
                if not blank:
                    self.held[batch.first + i] = None
            elif i == 0 and bom:
                self.held[batch.first] = data[b0:end]
            else:
                continue
            out.write(view[done:b0])
            out.write((b" " if blank else TOO_LONG) + data[end:b1])
            done = b1
        out.write(view[done:])

    def _file(self, path: Path) -> None:
        from pyspark.sql import functions as F

        spark, spans = self.spark, self.proof.spans
        #: lines the executors do not read (``_write_lines``): their text for the reference parser, None if too long
        self.held: dict[int, bytes | None] = {}
        # the file's one reading: copied while hashed (its spans settled), the executors read the copy
        is_parquet = parquet.is_parquet(path)
        copy = parquet.take(path, self.proof, self.scratch)[0] if is_parquet else self._copy_lines(path)
        self._copies.append(copy)
        if is_parquet:  # each row as the JSON line of its non-null attributes
            table = spark.read.schema(_SCHEMA).parquet(_literal(copy.resolve()))
            raw = table.select(F.to_json(F.struct(*[F.col(f"`{c}`") for c in table.columns])).alias("value"))
        else:
            raw = spark.read.option("lineSep", "\n").text(_literal(copy.resolve()))
        # line numbers: each split's rows are consecutive ids from its first; the splits in file order (and no longer
        # than SPLIT_BYTES: the cached splits are the ones planned here, at their first use)
        previous = spark.conf.get(_SPLIT_CONF)
        split = _byte_string(previous or "")
        if split is None or split > SPLIT_BYTES:
            spark.conf.set(_SPLIT_CONF, str(SPLIT_BYTES))
        try:
            numbered = self._view("u_raw", raw.select("value", F.input_file_block_start().alias("b"),
                                                      F.monotonically_increasing_id().alias("m")), persist=True)
            blocks = sorted(numbered.groupBy("b").agg(F.min("m"), F.count(F.lit(1))).collect())
        finally:
            if previous is None:
                spark.conf.unset(_SPLIT_CONF)
            else:
                spark.conf.set(_SPLIT_CONF, previous)
        base, rows = 0, []
        for b, m0, n in blocks:
            rows.append((b, m0, base))
            base += n
        total = base
        final_newline = total == 0 or is_parquet or _ends_with_newline(copy)
        self._view("u_blocks", self._frame(rows, "b BIGINT, m0 BIGINT, base BIGINT"))
        buckets = []
        for k, s in enumerate(spans):
            last = total if s.last is None else min(s.last, total)
            buckets += [(q, k, s.first, last) for q in range(s.first // BUCKET, last // BUCKET + 1)] if last >= s.first else []
        self._view("u_span_buckets", self._frame(buckets, "bucket BIGINT, span BIGINT, first BIGINT, last BIGINT"))
        self._view("u_spans", self._frame([(k, s.reason) for k, s in enumerate(spans)], "span BIGINT, reason STRING"))
        self._view("u_span_sources", self._frame([(k, src) for k, s in enumerate(spans) for src in sorted(s.sources)],
                                                 "span BIGINT, source STRING"))
        self._view("u_lines", self._sql(
            f"SELECT /*+ BROADCAST(sb) */ l.line, sb.span, l.value, l.line < {total} OR {str(final_newline).lower()} AS nl "
            "FROM (SELECT /*+ BROADCAST(k) */ k.base + r.m - k.m0 + 1 AS line, r.value FROM u_raw r JOIN u_blocks k "
            f"USING (b)) l JOIN u_span_buckets sb ON sb.bucket = l.line DIV {BUCKET} AND l.line BETWEEN sb.first AND sb.last"))
        self._parse()
        self.counters.lines += total - self.blank
        self._classify_spark()

    def _parse(self) -> None:
        """``u_ev``: the events of the fast path (executors) and of the reference parser (driver, the rare rest);
        ``self.rejected``: the lines the reference parser refused."""
        from functools import reduce

        from pyspark.sql import functions as F

        px = self._sql(f"SELECT line, span, value, nl, from_json(value, {_q(_SCHEMA)}) AS j FROM u_lines")
        produced = (F.col("nl") & F.col("j").isNotNull() & (F.octet_length("value") <= MAX_LINE_BYTES)
                    & (F.expr(f"to_json(j, {_JSON_OPTIONS})") == F.col("value")) & ~F.col("value").contains("\\")
                    & ~F.col("value").rlike("[\\x7f\\x{2028}\\x{2029}]"))
        ok = reduce(lambda a, b: a & b, _rules(), produced) & F.expr(_TIME_US).isNotNull()
        self._view("u_px", px.withColumn("ok", F.coalesce(ok, F.lit(False))), persist=True)
        # the rest to the driver: one collect when it is small, else through Parquet files (a longer value, a Parquet
        # row, is refused unread: NULL)
        size = self._sql(f"SELECT coalesce(sum(least(octet_length(value), {MAX_LINE_BYTES + 2})), 0) FROM u_px "
                         "WHERE NOT ok").collect()[0][0]
        rest = self._sql(f"SELECT line, span, CASE WHEN octet_length(value) <= {MAX_LINE_BYTES + 1} "
                         "THEN cast(value AS BINARY) END AS data, nl FROM u_px WHERE NOT ok")
        fast = self._sql(f"SELECT {_FAST_SELECT} FROM u_px WHERE ok")
        events, self.rejected, self.blank = _slow_path(
            rest.collect() if size <= COLLECT_BYTES else self._spilled(rest), self.held)
        if events:
            fast = fast.unionByName(self._frame(events, ", ".join(f"{n} {_spark_type(t)}" for n, t in EVENT_COLUMNS)))
        self._view("u_ev", fast)

    def _spilled(self, rest: DataFrame) -> Iterator[tuple[Any, ...]]:
        """``rest``'s rows written by the executors as Parquet in the scratch folder (row groups of about
        ``REST_GROUP_BYTES``: the size is checked at each row), then read back on the driver by pyarrow a few rows at a
        time: neither Spark's results nor the driver's JVM heap carry them, and the driver holds one row group at once.
        The folder goes with the file (``file``)."""
        folder = self.scratch / f"rest-{self.file_id}"
        self._folders.append(folder)
        (rest.write.option("parquet.block.size", str(REST_GROUP_BYTES)).option("parquet.page.size", str(1 << 20))
         .option("parquet.page.size.row.check.min", "1").option("parquet.page.size.row.check.max", "1")
         .option("parquet.block.size.row.check.min", "1").option("parquet.block.size.row.check.max", "1")
         .option("parquet.enable.dictionary", "false").mode("overwrite").parquet(str(folder.resolve())))
        return _read_rest(folder)

    # ------------------------------------------------------------------ authentication, wave, time
    def _classify_spark(self) -> None:
        c, spans = self.counters, self.proof.spans
        known = ", ".join(_q(w) for w in sorted(self.known_waves)) or "NULL"
        kinds = ", ".join(_q(k) for k in sorted(self.kinds)) or "NULL"
        self._view("u_c", self._sql(
            "SELECT /*+ BROADCAST(s), BROADCAST(ss) */ e.*, CASE WHEN s.reason IS NOT NULL THEN s.reason "
            f"WHEN ss.source IS NULL THEN {_q(reasons.SOURCE_UNTRUSTED)} "
            f"WHEN e.wave <> {_q(self.rules.id)} THEN CASE WHEN e.wave IN ({known}) THEN '~other' "
            f"ELSE {_q(reasons.UNKNOWN_WAVE)} END WHEN e.kind NOT IN ({kinds}) THEN '~kind' "
            f"WHEN e.time_us > {self.as_of_us} THEN {_q(reasons.FUTURE_DATED)} END AS early "
            "FROM u_ev e JOIN u_spans s USING (span) LEFT JOIN u_span_sources ss ON ss.span = e.span "
            "AND ss.source = e.source"), persist=True)
        self.python_refused: list[tuple[Any, ...]] = []
        for line, span, item in self.rejected:  # refused by the reference parser: the few lines off the fast path
            reason, detail = item.reason, item.detail
            if spans[span].reason is not None:
                c.unproven += 1
                reason, detail = spans[span].reason or "", spans[span].detail
            self.python_refused.append((line, reason, detail, False, None, item.source, item.id, None, None, None,
                                        None, None))
        counts: dict[str, int] = {e: n for e, n in self._sql(
            "SELECT early, count(*) FROM u_c WHERE early IS NOT NULL GROUP BY early").collect()}
        c.other_wave += counts.pop("~other", 0)
        c.unproven += sum(n for e, n in counts.items() if e not in (reasons.UNKNOWN_WAVE, "~kind", reasons.FUTURE_DATED))
        self.refusal_parts: list[DataFrame] = []
        if counts:
            self._early_refusals_spark()
        self._wave_events_spark()

    def _early_refusals_spark(self) -> None:
        spans = self.proof.spans
        untrusted, unknown = _q(reasons.SOURCE_UNTRUSTED), _q(reasons.UNKNOWN_WAVE)
        k = (f"CASE c.early WHEN {untrusted} THEN c.source WHEN {unknown} THEN c.wave WHEN '~kind' THEN c.kind "
             "ELSE '' END")
        sp = f"CASE WHEN c.early IN ({unknown}, '~kind') THEN -1 ELSE c.span END"
        details = [(early, key, span, early_detail(early, key, span, spans, self.kinds))
                   for early, key, span in self._sql(
                       f"SELECT DISTINCT early, {k}, {sp} FROM u_c c WHERE early IS NOT NULL "
                       f"AND early NOT IN ('~other', {_q(reasons.FUTURE_DATED)})").collect()]
        self._view("u_early_details", self._frame(details, "early STRING, k STRING, span BIGINT, detail STRING"))
        future = f"concat('event time ', {_q(WHEN)}, ' is after the run\\'s as-of time ', {_q(format_us(self.as_of_us))})"
        self.refusal_parts.append(self._sql(
            f"SELECT /*+ BROADCAST(d) */ c.line, CASE c.early WHEN '~kind' THEN {_q(reasons.INVALID_DATA)} "
            f"ELSE c.early END AS reason, coalesce(d.detail, {future}) AS detail, d.detail IS NULL AS timed, "
            f"{_event_fields('c')} FROM u_c c LEFT JOIN u_early_details d ON d.early = c.early AND d.k = {k} "
            f"AND d.span = {sp} WHERE c.early IS NOT NULL AND c.early <> '~other'"))

    # ------------------------------------------------------------------ duplicates, judgement, record
    def _previous_spark(self) -> None:
        """``u_prev``: what the store holds for the keys of this file's wave events (latest row of each)."""
        files = self._files()
        schema = ("source STRING, id STRING, p_digest BINARY, p_outcome STRING, p_run BIGINT, p_file BIGINT, "
                  "p_line BIGINT")
        if not files:
            self._view("u_prev", self._frame([], schema))
            return
        self._view("u_store", self.spark.read.parquet(*(_literal(f) for f in files)))
        stored = "u_prev_store" if self.judged_again_files else "u_prev"
        self._view(stored, self._sql(
            "SELECT source, id, max_by(digest, seq) AS p_digest, max_by(outcome, seq) AS p_outcome, "
            "max_by(run, seq) AS p_run, max_by(file, seq) AS p_file, max_by(line, seq) AS p_line FROM u_store s "
            "LEFT SEMI JOIN (SELECT source, id FROM u_c WHERE early IS NULL) k USING (source, id) GROUP BY source, id"))
        if self.judged_again_files:  # judged again by this run, its row not rewritten: where this run judged it
            self._view("u_judged_again", self.spark.read.parquet(*(_literal(f) for f in self.judged_again_files)))
            self._view("u_prev", self._sql(
                f"SELECT p.source, p.id, p.p_digest, p.p_outcome, CASE WHEN j.line IS NULL THEN p.p_run ELSE "
                f"CAST({self.run_id} AS BIGINT) END AS p_run, coalesce(j.file, p.p_file) AS p_file, "
                "coalesce(j.line, p.p_line) AS p_line FROM u_prev_store p LEFT JOIN u_judged_again j USING (source, id)"))

    def _wave_events_spark(self) -> None:
        c, run, settled = self.counters, self.run_id, f"({_q(reasons.COUNTED)}, {_q(reasons.AFTER_PAYMENT)})"
        self._previous_spark()
        self._view("u_w", self._sql(
            "SELECT *, CASE WHEN p_digest IS NULL THEN first_line "
            f"WHEN p_outcome NOT IN {settled} AND p_run <> {run} THEN match_line END AS r_line FROM ("
            "SELECT c.*, p.p_digest, p.p_outcome, p.p_run, p.p_file, p.p_line, "
            "min_by(c.digest, c.line) OVER g AS first_digest, min(c.line) OVER g AS first_line, "
            "min(CASE WHEN c.digest = p.p_digest THEN c.line END) OVER g AS match_line "
            "FROM u_c c LEFT JOIN u_prev p USING (source, id) WHERE c.early IS NULL "
            "WINDOW g AS (PARTITION BY c.source, c.id))"), persist=True)
        self._verdicts_spark()
        self._view("u_r", self._sql(
            "SELECT /*+ BROADCAST(v) */ w.*, v.reason AS v_reason, v.label AS v_label, v.detail AS v_detail "
            f"FROM u_w w JOIN u_verdicts v ON {same_combination('w', 'v', a_is_event=True)} "
            "AND w.time_us >= v.lo AND w.time_us < v.hi WHERE w.line = w.r_line"), persist=True)
        self.ledger.begin()
        self._installations_spark()
        self._view("u_ro", self._sql(
            "SELECT r.*, i.id AS inst_id, i.vendor AS i_vendor, i.category AS i_category, i.site_size AS i_size, "
            f"i.site_id AS i_site, CASE WHEN r.v_reason IS NOT NULL THEN r.v_reason WHEN {INSTALLATION_DIFFERS} "
            f"THEN {_q(reasons.INCONSISTENT_INSTALLATION)} WHEN i.status = 'paid' THEN {_q(reasons.AFTER_PAYMENT)} "
            f"ELSE {_q(reasons.COUNTED)} END AS outcome "
            f"FROM u_r r LEFT JOIN u_inst i ON r.v_reason IS NULL AND {same_site('i', 'r')}"),
            persist=True)
        self._duplicate_data_spark()
        self._judged_refusals_spark()
        self._duplicates_spark()
        counted, after, rows, new, unchanged = self._sql(
            f"SELECT count_if(outcome = {_q(reasons.COUNTED)}), count_if(outcome = {_q(reasons.AFTER_PAYMENT)}), "
            f"count(*), count_if(p_digest IS NULL), count_if({UNCHANGED}) FROM u_ro").collect()[0]
        c.counted += counted
        c.after_payment += after
        self._update_installations_spark()
        parts = self._write_refusals_spark()
        self._record_spark(rows - unchanged, new, unchanged)
        self.report.extend(*parts)
        for part in parts[:2]:
            part.unlink()

    def _verdicts_spark(self) -> None:
        """``u_verdicts``: the verdict of each distinct combination per interval (``Engine._intervals``, driver)."""
        combos = self._sql(f"SELECT DISTINCT {', '.join(COMBO_ATTRIBUTES)}, coalesce(doc_type, '') FROM u_w "
                           "WHERE line = r_line").collect()
        rows = [(*combo, *piece) for combo in combos for piece in self._intervals(tuple(combo))]
        keyed = ", ".join(f"{k} STRING" for k in COMBO_KEY_COLUMNS)
        self._view("u_verdicts", self._frame(
            rows, f"{keyed}, lo BIGINT, hi BIGINT, reason STRING, label BIGINT, detail STRING"))

    def _installations_spark(self) -> None:
        """``u_inst``: the wave's installations (ledger), with those the first eligible event of a new one creates."""
        schema = ("id BIGINT, sw_id STRING, site_id STRING, vendor STRING, category STRING, site_size STRING, "
                  "status STRING, best BIGINT, q_time BIGINT, q_source STRING, q_id STRING")
        rows = [tuple(r.values()) for r in self.ledger.wave_installations(self.rules.id).to_pylist()]
        self._view("u_inst", self._frame(rows, schema))
        new = self._sql(
            "SELECT sw_id, min_by(site_id, line), min_by(inst_ref, line), min_by(vendor, line), min_by(category, line), "
            "min_by(site_size, line), min_by(sw_name, line), min_by(site_name, line) FROM u_r r "
            f"LEFT ANTI JOIN u_inst i ON {same_site('i', 'r')} WHERE v_reason IS NULL GROUP BY sw_id, {site_key('r')} "
            "ORDER BY min(line)").collect()
        if new:
            ids = self.ledger.create_installations(self.rules.id, [tuple(n) for n in new], self.run_id)
            rows += [(i, n[0], n[1], n[3], n[4], n[5], "pending", 0, None, None, None)
                     for i, n in zip(ids, new, strict=True)]
            self._view("u_inst", self._frame(rows, schema), persist=True)

    def _duplicate_data_spark(self) -> None:
        """``duplicate-data`` (``Engine._duplicate_data``): a counted event of ``u_ro`` whose data (sha256) its
        installation sent already, counted in the store or on an earlier line of the file, counts nothing; ``u_dd``
        (line, detail) names the event whose copy counts."""
        counted = _q(reasons.COUNTED)
        prior = ("SELECT CAST(NULL AS BIGINT) AS inst_id, CAST(NULL AS STRING) AS sha256, CAST(NULL AS STRING) AS "
                 "p_source, CAST(NULL AS STRING) AS p_id WHERE false")
        if self._files():  # ``u_store``: ``_previous_spark``
            first = "named_struct('t', s.time_us, 's', s.source, 'i', s.id)"
            prior = (f"SELECT /*+ BROADCAST(b) */ b.inst_id, b.sha256, min_by(s.source, {first}) AS p_source, "
                     f"min_by(s.id, {first}) AS p_id FROM u_store s JOIN (SELECT DISTINCT inst_id, sha256 FROM k) b "
                     "ON s.installation = b.inst_id AND get_json_object(s.body, '$.data.sha256') = b.sha256 "
                     f"WHERE s.outcome = {counted} GROUP BY b.inst_id, b.sha256")
        dd = self._view("u_dd", self._sql(
            f"WITH k AS (SELECT line, inst_id, sha256, source, id FROM u_ro WHERE outcome = {counted}), "
            f"p AS ({prior}), f AS (SELECT inst_id, sha256, min(line) AS first_line, min_by(source, line) AS f_source, "
            "min_by(id, line) AS f_id FROM k GROUP BY inst_id, sha256) "
            f"SELECT k.line, {data_detail('k.sha256', 'coalesce(p.p_source, f.f_source)', 'coalesce(p.p_id, f.f_id)')} "
            "AS detail FROM k JOIN f ON f.inst_id = k.inst_id AND f.sha256 = k.sha256 LEFT JOIN p "
            "ON p.inst_id = k.inst_id AND p.sha256 = k.sha256 WHERE p.inst_id IS NOT NULL OR k.line <> f.first_line"),
            persist=True)
        if dd.isEmpty():
            return
        ro = self.spark.table("u_ro")
        outcome = (f"CASE WHEN dd.line IS NULL THEN ro.outcome ELSE {_q(reasons.DUPLICATE_DATA)} END AS outcome")
        columns = ", ".join(f"ro.`{c}`" if c != "outcome" else outcome for c in ro.columns)
        ro.createOrReplaceTempView("u_ro_judged")
        self._view("u_ro", self._sql(f"SELECT /*+ BROADCAST(dd) */ {columns} FROM u_ro_judged ro "
                                     "LEFT JOIN u_dd dd ON dd.line = ro.line"), persist=True)

    def _judged_refusals_spark(self) -> None:
        inconsistent, duplicate = _q(reasons.INCONSISTENT_INSTALLATION), _q(reasons.DUPLICATE_DATA)
        attrs = MISMATCH_ATTRIBUTES
        rows = [(*combo, mismatch_detail(*combo)) for combo in self._sql(
            f"SELECT DISTINCT {', '.join(attrs)} FROM u_ro WHERE outcome = {inconsistent}").collect()]
        self._view("u_mismatch", self._frame(rows, ", ".join(f"{a} STRING" for a in (*attrs, "detail"))))
        self.refusal_parts.append(self._sql(
            f"SELECT /*+ BROADCAST(m) */ ro.line, ro.outcome AS reason, CASE WHEN ro.outcome = {inconsistent} "
            f"THEN m.detail WHEN ro.outcome = {duplicate} THEN dd.detail ELSE ro.v_detail END AS detail, "
            f"ro.outcome NOT IN ({inconsistent}, {duplicate}) AS timed, "
            f"{_event_fields('ro')} FROM u_ro ro LEFT JOIN u_mismatch m USING ({', '.join(attrs)}) "
            "LEFT JOIN u_dd dd ON dd.line = ro.line "
            f"WHERE ro.outcome NOT IN ({_q(reasons.COUNTED)}, {_q(reasons.AFTER_PAYMENT)})"))

    def _duplicates_spark(self) -> None:
        files = [r[0] for r in self._sql("SELECT DISTINCT p_file FROM u_w WHERE p_file IS NOT NULL AND "
                                         "(r_line IS NULL OR line <> r_line)").collect()]
        self._view("u_file_names", self._frame([(f, str(self.ledger.file_path(f))) for f in files],
                                               "file BIGINT, path STRING"))
        where = (f"CASE WHEN here THEN concat('run {self.run_id}, ', {_q(str(self.path))}, ' line ', r_line) "
                 "ELSE concat('run ', p_run, ', ', f.path, ' line ', p_line) END")
        self.refusal_parts.append(self._sql(
            f"SELECT /*+ BROADCAST(f) */ x.line, CASE WHEN conflict THEN {_q(reasons.CONFLICTING_DUPLICATE)} "
            f"ELSE {_q(reasons.DUPLICATE_EVENT)} END AS reason, CASE WHEN conflict THEN concat('same source and id as "
            f"the event recorded at ', {where}, ', with different content') ELSE concat('already recorded at ', {where}, "
            "' (', CASE WHEN here THEN r_outcome ELSE p_outcome END, ')') END AS detail, false AS timed, "
            f"{_event_fields('x')} FROM (SELECT w.*, w.digest <> coalesce(w.p_digest, w.first_digest) AS conflict, "
            "w.r_line IS NOT NULL AND w.r_line < w.line AS here, ro.outcome AS r_outcome FROM u_w w "
            "LEFT JOIN u_ro ro ON ro.source = w.source AND ro.id = w.id WHERE w.r_line IS NULL OR w.line <> w.r_line) x "
            "LEFT JOIN u_file_names f ON f.file = x.p_file"))

    def _write_refusals_spark(self) -> tuple[Path, Path, list[tuple[str, str, int]]]:
        """The file's refusals back on the driver, written by the DuckDB engine's own COPYs (same bytes)."""
        types = {"line": pa.int64(), "timed": pa.bool_(), "time_us": pa.int64()}
        schema = pa.schema([(n, types.get(n, pa.string())) for n in _REFUSAL_FIELDS])
        rows = self.python_refused
        tables = [pa.table({n: pa.array([r[i] for r in rows], type=schema.field(n).type)
                            for i, n in enumerate(_REFUSAL_FIELDS)})]
        if self.refusal_parts:
            from functools import reduce

            union = reduce(lambda a, b: a.unionByName(b), self.refusal_parts).select(*_REFUSAL_FIELDS)
            if hasattr(union, "toArrow"):  # pyspark >= 4: columnar, no Python object per refusal
                tables.append(union.toArrow().cast(schema))
            else:
                got = union.collect()
                tables.append(pa.table({n: pa.array([r[i] for r in got], type=schema.field(n).type)
                                        for i, n in enumerate(_REFUSAL_FIELDS)}))
        table = pa.concat_tables(tables)  # _write_refusals writes them in line order
        con = self.con
        con.register("refused_src", table)
        names = [n for n, _ in _REFUSED]
        select = {n: n for n in names} | {
            "detail": f"CASE WHEN timed THEN replace(detail, '{WHEN}', fmt_us(time_us)) ELSE detail END",
            "time": "fmt_us(time_us)"}
        con.execute(f"CREATE OR REPLACE TEMP TABLE refused AS SELECT {', '.join(f'{select[n]} AS {n}' for n in names)} "
                    "FROM refused_src")
        con.unregister("refused_src")
        return self._write_refusals()

    def _update_installations_spark(self) -> None:
        """Best window and earliest completion of the installations with newly counted events (counts: ``count_changes``)."""
        spans = sorted(set(self.spans_by_category.values()))
        cnt = "CASE k.span " + " ".join(
            f"WHEN {s} THEN count(*) OVER (PARTITION BY k.installation ORDER BY k.time_us RANGE BETWEEN CURRENT ROW "
            f"AND {s} FOLLOWING)" for s in spans) + " END"
        order = "OVER (PARTITION BY k.installation ORDER BY k.time_us, k.source, k.id)"
        back = "CASE k.n " + " ".join(
            f"WHEN {n} THEN " + ("k.time_us" if n == 1 else f"lag(k.time_us, {n - 1}) {order}") for n in self.ns) + " END"
        self._view("u_rules", self.rules_df)
        self._view("u_nk", self._sql(f"SELECT inst_id AS installation, time_us, source, id FROM u_ro "
                                     f"WHERE outcome = {_q(reasons.COUNTED)}"))
        rng = self._view("u_rng", self._sql(
            "SELECT nk.installation, first(r.n) AS n, min(nk.time_us) - first(r.span) AS lo, "
            "max(nk.time_us) + first(r.span) AS hi FROM u_nk nk JOIN u_inst i ON i.id = nk.installation "
            "JOIN u_rules r ON r.category = i.category GROUP BY nk.installation"), persist=True)
        if rng.isEmpty():
            return
        prior = ""
        if self._files():
            prior = ("UNION ALL SELECT /*+ BROADCAST(rng) */ s.installation, s.time_us, s.source, s.id FROM u_store s "
                     "JOIN u_rng rng ON s.installation = rng.installation AND s.time_us BETWEEN rng.lo AND rng.hi "
                     f"WHERE s.outcome = {_q(reasons.COUNTED)}")
        rows = [(r[0], r[1], None if r[2] is None else r[2].asDict()) for r in self._sql(
            "SELECT installation, max(cnt), min(CASE WHEN back IS NOT NULL AND time_us - back <= span "
            "THEN named_struct('t', time_us, 's', source, 'i', id) END) FROM ("
            f"SELECT k.*, {back} AS back, {cnt} AS cnt FROM (SELECT u.*, r.n, r.span FROM (SELECT * FROM u_nk {prior}) u "
            "JOIN u_inst i ON i.id = u.installation JOIN u_rules r ON r.category = i.category) k) GROUP BY installation"
        ).collect()]
        state = {r[0]: tuple(r[1:]) for r in self._sql(
            "SELECT i.id, i.status, i.best, i.q_time, i.q_source, i.q_id, rng.n FROM u_inst i "
            "JOIN u_rng rng ON rng.installation = i.id").collect()}
        self.ledger.update_installations(installation_updates(rows, state))

    def _record_spark(self, rows: int, new: int, unchanged: int) -> None:
        """The file's recorded events into a new store file (written by the executors); then one commit registers it
        with the installations. The ``unchanged`` events judged again to the refusal the store holds get no row, only
        a line in ``judged_again_files`` for the rest of the run (``Engine._record``)."""
        seq = self.store.next_seq()
        final = self.store.dir / f"{self.run_id:06d}-{seq:08d}.parquet"
        if rows:
            settled = f"({_q(reasons.COUNTED)}, {_q(reasons.AFTER_PAYMENT)})"
            written = self.scratch / f"store-{seq}"
            self._sql(
                "SELECT source, id, coalesce(p_digest, digest) AS digest, time_us, outcome, "
                f"CASE WHEN outcome IN {settled} THEN inst_id END AS installation, "
                f"CASE WHEN outcome IN {settled} THEN v_label END AS label, CAST({self.run_id} AS BIGINT) AS run, "
                f"CAST({self.file_id} AS BIGINT) AS file, line, CASE WHEN outcome = {_q(reasons.COUNTED)} THEN body END "
                f"AS body, CAST({seq} AS BIGINT) AS seq FROM u_ro WHERE NOT {UNCHANGED} ORDER BY line"
            ).coalesce(1).write.option("parquet.block.size", 8 << 20).mode("overwrite").parquet(str(written))
            parts = sorted(written.glob("part-*.parquet"))  # its path is no pattern: only the names are
            if len(parts) != 1:
                raise RuntimeError(f"Spark wrote {len(parts)} files for one store file in {written}")
            tmp = final.with_name("." + final.name + ".tmp")
            shutil.move(parts[0], tmp)
            shutil.rmtree(written, ignore_errors=True)
            finish_file(tmp, final)
            self.store.register(seq, self.run_id, final.name, rows, new)
        self.ledger.commit()
        if unchanged:
            again = self.scratch / f"judged-again-{self.file_id}"
            self._sql(f"SELECT source, id, CAST({self.file_id} AS BIGINT) AS file, line FROM u_ro WHERE {UNCHANGED}"
                      ).coalesce(1).write.mode("overwrite").parquet(str(again))
            self.judged_again_files.append(again)


    # ------------------------------------------------------------------ settlement
    def prepare_proofs(self, due: list[tuple[int, int, str, str, int, int]]) -> None:
        """``proof_rows`` (driver): for each (installation, completion time, source, id, n, span), the n counted
        events ending at its completion, found by the executors in the store (a few rows per installation due)."""
        self.con.execute("CREATE OR REPLACE TEMP TABLE proof_rows (installation BIGINT, time_us BIGINT, source VARCHAR, "
                         "id VARCHAR, label BIGINT, body VARCHAR)")
        files = self._files()
        if not due or not files:
            return
        with self._failures("while finding the proofs of the payments due",
                            "no payment was recorded in the ledger (the run's events were)"):
            self._prepare_proofs(due, files)

    def _prepare_proofs(self, due: list[tuple[int, int, str, str, int, int]], files: list[Path]) -> None:
        self._view("u_store", self.spark.read.parquet(*(_literal(f) for f in files)))
        self._view("u_due", self._frame([(d[0], d[1], d[2], d[3], d[4], d[1] - d[5]) for d in due],
                                        "installation BIGINT, qt BIGINT, qs STRING, qi STRING, n BIGINT, lo BIGINT"))
        rows = self._sql(
            "SELECT installation, time_us, source, id, label, body FROM (SELECT /*+ BROADCAST(d) */ s.installation, "
            "s.time_us, s.source, s.id, s.label, s.body, d.n, row_number() OVER (PARTITION BY s.installation "
            "ORDER BY s.time_us DESC, s.source DESC, s.id DESC) AS rn FROM u_store s JOIN u_due d "
            f"ON s.installation = d.installation WHERE s.outcome = {_q(reasons.COUNTED)} AND s.time_us >= d.lo AND "
            "(s.time_us < d.qt OR (s.time_us = d.qt AND (s.source < d.qs OR (s.source = d.qs AND s.id <= d.qi))))) "
            "WHERE rn <= n").collect()
        names = ("installation", "time_us", "source", "id", "label", "body")
        types = (pa.int64(), pa.int64(), pa.string(), pa.string(), pa.int64(), pa.string())
        self.con.register("proof_src", pa.table({n: pa.array([r[i] for r in rows], type=t)
                                                 for i, (n, t) in enumerate(zip(names, types, strict=True))}))
        self.con.execute("INSERT INTO proof_rows SELECT * FROM proof_src")
        self.con.unregister("proof_src")


def _event_fields(alias: str) -> str:
    """What a refusal says of an event, as ``_REFUSAL_FIELDS`` after line, reason, detail and timed."""
    return (f"{alias}.time_us, {alias}.source, {alias}.id AS event_id, {alias}.wave, {alias}.vendor AS vendor_id, "
            f"{alias}.sw_id AS software_id, {alias}.sw_version AS software_version, {alias}.site_id")


def _slow_path(rest: Iterable[Any], held: dict[int, bytes | None]
               ) -> tuple[list[tuple[Any, ...]], list[tuple[int, int, Rejected]], int]:
    """The lines off the fast path through the reference parser, one at a time as they come: (event rows, refusals,
    blank lines), in line order. A line of ``held`` is read from there (its text without its end; None: refused
    unread, as too long), a line with no data is refused unread, as too long."""
    events: list[tuple[Any, ...]] = []
    rejected: list[tuple[int, int, Rejected]] = []
    blank = 0
    for line, span, raw, nl in rest:
        if line in held:
            data = held[line]
        else:
            data = None if raw is None else bytes(raw)
            if data is not None and nl and data.endswith(b"\r"):
                data = data[:-1]
        if data is not None and not data.strip():
            blank += 1
            continue
        item = parse_event(None if data is None or len(data) > MAX_LINE_BYTES else data)
        if isinstance(item, Rejected):
            rejected.append((line, span, item))
            continue
        events.append(event_row(line, span, item))
    events.sort(key=lambda r: r[0])
    rejected.sort(key=lambda r: r[0])
    return events, rejected, blank


def _read_rest(folder: Path) -> Iterator[tuple[Any, ...]]:
    """The rows (line, span, data, nl) of the Parquet files Spark wrote in ``folder``, ``REST_BATCH_ROWS`` at a time."""
    import pyarrow.parquet as pq

    for part in sorted(folder.glob("part-*.parquet")):
        with pq.ParquetFile(part) as f:
            for batch in f.iter_batches(batch_size=REST_BATCH_ROWS, columns=["line", "span", "data", "nl"],
                                        use_threads=False):
                yield from zip(*(batch.column(i).to_pylist() for i in range(4)), strict=True)


_BYTE_UNITS = {"": 1, "b": 1} | {u + b: 1 << (10 * (i + 1)) for i, u in enumerate("kmgtp") for b in ("", "b")}


def _byte_string(text: str) -> int | None:
    """A size as Spark's configuration writes it (``134217728b``, ``64m``, ``4096``), or None."""
    m = re.fullmatch(r"\s*([0-9]+)\s*([A-Za-z]*)\s*", text)
    unit = _BYTE_UNITS.get(m.group(2).lower()) if m else None
    return None if m is None or unit is None else int(m.group(1)) * unit


def _spark_type(t: pa.DataType) -> str:
    return "BIGINT" if t == pa.int64() else "BINARY" if t == pa.binary() else "STRING"


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


__all__ = ["DEFAULT_MASTER", "SparkEngine", "require_spark", "spark_session"]
