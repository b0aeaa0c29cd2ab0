"""Intake as set operations on DuckDB: each batch of lines parsed, validated, de-duplicated, judged and recorded.

Per batch (whole signed segments, hashed as they were read, the file's one reading: ``loader``; or rows of a
Parquet events file, copied while hashed: ``parquet``):

1. **Parse and validate.** The lines become an Arrow string column; DuckDB parses each one against
   the shape of a data-received event and keeps on the fast path only the lines that are, byte for
   byte, the compact serialisation of the values it read (so their meaning in Python is known
   exactly) and that pass every rule of the envelope and the data schema, written as SQL predicates
   no looser than the Python checks. Every other line (another key order, spaces, an escape, an
   extension attribute, a bad value…) goes through ``intake.parse_event``, the reference
   implementation, which gives the same event or the exact refusal and its detail.
2. **Authenticate.** Each line joins its span (``authenticate``: proven, or refused with a reason)
   and the sources the span's key vouches for.
3. **De-duplicate.** Keys already seen are found through sorted runs of 64-bit key hashes of the
   event store, then looked up exactly in the few store files that may hold them (``store``);
   repeats inside the batch by a window over (source, id). Once judged, a counted event whose data (its
   installation and ``data.sha256``) was counted already — in the store (found the same way, through the hashes of
   the data keys of installations not paid yet) or on an earlier line of the batch — is ``duplicate-data``.
4. **Judge.** Funding window, label, price and rule depend on a handful of attributes and on time
   only through a few instants (window bounds, label issue, expiry, revocation): the verdict of
   each distinct combination is computed once per interval by ``WaveRules.evaluate`` (the reference)
   and joined to the events by range. Installations: the first eligible event of a new one creates
   it; events that disagree with their installation are refused; events of a paid one are
   after-payment.
5. **Record.** Outcomes go to one Parquet file of the event store; installations touched get their
   count, and those whose completion may change (pending, or a new event before it) their best window
   and earliest completion recomputed from their counted events near the new ones (``proof``: a window
   only contains events within its span; a qualified installation's best window is the threshold, so
   one whose new events all come after its completion reads nothing of the store); one SQLite transaction
   registers the file and the installations. Refusals are a table of the batch, their details computed
   once per distinct value (and each event's time put in by SQL), written to the report by two COPYs
   (CSV rows, JSON objects) in line order: no Python step per event.

What a batch costs is what DuckDB does per event: the parse, the byte-for-byte check and the digest
of the canonical form (step 1) are about half of it, then one copy of the narrow columns per step
(``w``, ``r``, ``ro``). Each step's table is Arrow record batches of ``SLICE_ROWS`` rows (``materialise``), not
a DuckDB table: a batch's rows there would be one row group, which DuckDB scans on one thread, and every
later step reads them (a 1 M-event run 26 → 18 s on 2 cores, 33 → 27 s of CPU: no storage encoding either).
The line itself (``body``) is copied once, into ``ev``, and joined back by line number only when the batch
is written; authentication's view ``c`` is not materialised; the wave's
installations (``inst``) are read from the ledger once per run and kept up to date here. A batch is
bounded by its bytes (``loader.MAX_BATCH_BYTES``), which with ``MEMORY_LIMIT`` bounds the memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from conformity.payments import parquet, reasons
from conformity.payments.authenticate import FileProof, Span
from conformity.payments.eligibility import WaveRules
from conformity.payments.envelope import EVENT_TYPE, SHAPE, format_us
from conformity.payments.intake import MAX_LINE_BYTES, Event, Rejected, parse_event
from conformity.payments.labelbook import LabelBook
from conformity.payments.ledger import Ledger
from conformity.payments.loader import MAX_BATCH_BYTES, Batch, batches
from conformity.payments.report import RefusalReport
from conformity.payments.seen import SeenKeys
from conformity.payments.store import EventStore, finish_file, parquet_list, sql_literal

SETTLED = (reasons.COUNTED, reasons.AFTER_PAYMENT)
#: SQL over a judged event (``ro``, Spark's ``u_ro``): judged again (its key recorded by an earlier run) to the very
#: outcome the store holds for it; the store's row says all a new one would (but the run, file and line that read it)
UNCHANGED = "(p_digest IS NOT NULL AND coalesce(outcome = p_outcome, false))"
#: DuckDB's buffer pool: the run's own tables (installations, verdicts, a batch's refusals) and the joins' hash tables;
#: a batch's events are Arrow tables outside it (``materialise``). More spills to the run's scratch folder. (400 MB
#: when the batch's tables were DuckDB's: 10 M events peaked at 1,009 MiB of RSS with it, 871 MiB with 256 MB.)
MEMORY_LIMIT = "256MB"
#: the smallest pool ``usine pay run --memory-limit`` may give DuckDB (below it, a batch's joins fail or spill
#: without end)
MIN_MEMORY_BYTES = 64 * 2**20
#: the units of a size, decimal and binary, as DuckDB reads them
_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*")


def memory_bytes(size: str) -> int:
    """The bytes of a memory size (``256MB``, ``2GiB``, ``1.5GB``: a number and a decimal or binary unit); ValueError
    saying why for anything else, or a size under :data:`MIN_MEMORY_BYTES` (DuckDB would take a negative one for no
    limit at all)."""
    found = _SIZE.fullmatch(size)
    if found is None or found.group(2).upper() not in _SIZE_UNITS:
        raise ValueError(f"{size!r} is not a memory size: a number and a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, "
                         "TiB), e.g. 2GB")
    count = int(Decimal(found.group(1)) * _SIZE_UNITS[found.group(2).upper()])
    if count < MIN_MEMORY_BYTES:
        raise ValueError(f"{size!r} is less than the {MIN_MEMORY_BYTES // 2**20} MiB a run needs at least")
    return count


#: :data:`MEMORY_LIMIT` in bytes (``RunOptions.memory_limit``'s default)
DEFAULT_MEMORY_BYTES = memory_bytes(MEMORY_LIMIT)
#: DuckDB's allocator gives freed memory back to the system after each statement that used more than a few MiB
#: (by default it keeps up to 128 MiB after a statement and 512 MiB after a bulk free: memory outside the buffer
#: pool's limit that the run's peak RSS counted)
ALLOCATOR: dict[str, str | int | float | list[str]] = {
    "allocator_flush_threshold": "16MB", "allocator_bulk_deallocation_flush_threshold": "64MB",
    "allocator_background_threads": "true"}
#: Arrow's buffers (the batches handed to DuckDB, a Parquet file's rows) from the C library's allocator: pyarrow's default
#: (mimalloc) kept what a run freed: 768 against 653-683 MiB of peak RSS for 1 M events read from Parquet
ARROW_POOL = "system"
#: rows per Arrow record batch handed to DuckDB (``in_slices``, ``materialise``): each a task for a thread
SLICE_ROWS = 16_384
ROW_GROUP = 16_384  # rows per Parquet row group of the store (a batch's rows, not sorted: a batch is a slice of the file)
NEVER = 1 << 62
#: stands for an event's time in a verdict's detail (judged per interval), replaced by the time of each event
WHEN = "\ue000when\ue000"
#: integer columns of the small tables filled from Python (``Engine._insert``)
_INT_COLUMNS = {"line": "BIGINT", "span": "BIGINT", "file": "BIGINT", "id": "BIGINT"}
#: a batch's refusals (the report's columns but kind and file, the same for all)
_REFUSED = (("line", "BIGINT"), ("reason", "VARCHAR"), ("detail", "VARCHAR"), ("source", "VARCHAR"),
            ("event_id", "VARCHAR"), ("time", "VARCHAR"), ("wave", "VARCHAR"), ("vendor_id", "VARCHAR"),
            ("software_id", "VARCHAR"), ("software_version", "VARCHAR"), ("site_id", "VARCHAR"))
#: envelope.format_us in SQL: RFC 3339 UTC, milliseconds or microseconds only when present
_FMT_US = ("CREATE OR REPLACE TEMP MACRO fmt_us(t) AS lpad(year(make_timestamp(t))::VARCHAR, 4, '0') || "
           "strftime(make_timestamp(t), '-%m-%dT%H:%M:%S') || CASE WHEN (t % 1000000 + 1000000) % 1000000 = 0 "
           "THEN '' WHEN t % 1000 = 0 THEN '.' || lpad((((t % 1000000 + 1000000) % 1000000) // 1000)::VARCHAR, 3, "
           "'0') ELSE '.' || lpad(((t % 1000000 + 1000000) % 1000000)::VARCHAR, 6, '0') END || 'Z'")

#: what judgement reads of an event (``Engine._intervals``), in ``w`` and in ``verdicts``: these attributes and the
#: document type (``doc_type`` of an event, ``doc_key`` once keyed: '' for none)
COMBO_ATTRIBUTES = ("vendor", "sw_id", "sw_version", "category", "site_size", "kind")
_COMBO = ", ".join(COMBO_ATTRIBUTES) + ", coalesce(doc_type, '')"
COMBO_KEY_COLUMNS = (*COMBO_ATTRIBUTES, "doc_key")  # a combination once keyed (``verdicts``, ``combos``)
_COMBO_KEY = ", ".join(COMBO_KEY_COLUMNS)


def same_combination(a: str, b: str, *, a_is_event: bool = False) -> str:
    """SQL: the rows ``a`` and ``b`` hold the same combination, attribute by attribute (``b`` keyed, with its
    ``doc_key``; ``a`` too, or an event with its ``doc_type``)."""
    doc = f"coalesce({a}.doc_type, '')" if a_is_event else f"{a}.doc_key"
    return " AND ".join(f"{a}.{k} = {b}.{k}" for k in COMBO_ATTRIBUTES) + f" AND {doc} = {b}.doc_key"

#: a combination's 64-bit key (``w.combo``, ``verdicts.h``): the batch's events join their verdicts on it, one integer
#: instead of seven strings (a batch of the 10 M run: the join 88 ms of CPU against 151). Not trusted: the attributes
#: are the vendors' to choose, so each batch's combinations are compared, attribute by attribute, with those already
#: keyed (``Engine._verdict_table``), and a run that meets two sharing a key joins on the attributes from then on.
COMBO_HASH = f"hash({_COMBO})"

#: the canonical form the digest is taken of (intake._CANONICAL: sorted keys, compact, not ASCII-escaped), as
#: a struct whose JSON (``to_json``) is that form for the lines of the fast path (no escape in them)
_CANONICAL = (
    "to_json({'data': {'bytes': j.data.bytes, 'category': j.data.category, 'document_type': j.data.document_type, "
    "'installation_id': j.data.installation_id, 'kind': j.data.kind, 'reference': j.data.reference, "
    "'sha256': j.data.sha256, 'site': {'id': j.data.site.id, 'name': j.data.site.name, 'size': j.data.site.size}, "
    "'software': {'id': j.data.software.id, 'name': j.data.software.name, "
    "'registration_id': j.data.software.registration_id, 'version': j.data.software.version}, "
    "'vendor_id': j.data.vendor_id, 'wave': j.data.wave}, 'datacontenttype': j.datacontenttype, "
    "'dataschema': j.dataschema, 'id': j.id, 'source': j.source, 'specversion': j.specversion, "
    "'subject': j.subject, 'time': j.time, 'type': j.type})")
#: the line is, byte for byte, the compact JSON of the values DuckDB read in the producer's key order (so no
#: other key, no repeated key, no space, no other number form) and holds no escape: its meaning in Python is
#: then exactly those values. (No character JSON writers may escape differently either: the values that may
#: hold one, the free-text ones, are checked by the last rule of ``_RULES``; the others match ASCII patterns.)
#: (``exact``: true when the line is known to be ``to_json(j)`` already — a Parquet row with no null, whose line is
#: made so, ``parquet.ROWS_PARSED`` —, null when it is to be checked)
_PRODUCED = "coalesce(exact, to_json(j) || chr(10) = raw) AND NOT contains(raw, '\\')"


def _between(expr: str, low: int, high: int) -> str:
    return f"strlen({expr}) BETWEEN {low} AND {high}"


#: the envelope and data rules (envelope.py, data-received.schema.json), never looser than the Python checks:
#: lengths in bytes (at least the number of characters), ASCII-only where Python accepts more.
_RULES = " AND ".join([
    "j.specversion = '1.0'", f"j.type = '{EVENT_TYPE}'",
    "regexp_full_match(j.source, '[\\x21-\\x7e]+')", "strlen(j.id) > 0",
    "regexp_full_match(j.time, '[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{3})?Z')",
    "j.subject = j.data.installation_id", "j.datacontenttype = 'application/json'",
    "regexp_full_match(j.dataschema, '[A-Za-z][A-Za-z0-9+.-]*:[\\x21-\\x7e]+')",
    _between("j.data.installation_id", 1, 100), _between("j.data.vendor_id", 1, 100),
    _between("j.data.software.id", 1, 100), _between("j.data.software.name", 1, 200),
    _between("j.data.software.version", 1, 50), _between("j.data.software.registration_id", 0, 100),
    "regexp_full_match(j.data.site.id, '[0-9A-Z][0-9A-Z._-]{0,49}')", "regexp_full_match(j.data.site.size, '[A-Z][A-Z0-9_]*')",
    _between("j.data.site.name", 0, 200), "regexp_full_match(j.data.wave, '[0-9]{4}-W[0-9]+')",
    "regexp_full_match(j.data.category, '[A-Z][A-Z0-9_]*')", "regexp_full_match(j.data.kind, '[a-z][a-z0-9_]*')",
    "(j.data.document_type IS NULL OR regexp_full_match(j.data.document_type, '[A-Za-z0-9][A-Za-z0-9._:-]{0,63}'))",
    "j.data.bytes >= 0", "regexp_full_match(j.data.sha256, '[0-9a-f]{64}')", _between("j.data.reference", 1, 300),
    # no control character in a free-text value (Python's json refuses them unescaped), nor DEL, U+2028, U+2029
    # (JSON writers may escape them or not: such a line takes the reference path)
    "NOT regexp_matches(j.id || j.data.installation_id || j.data.vendor_id || j.data.software.id || "
    "j.data.software.name || j.data.software.version || j.data.software.registration_id || j.data.site.id || "
    "j.data.site.name || j.data.reference, '[\\x00-\\x1f\\x7f\\x{2028}\\x{2029}]')",
])
def site_key(alias: str) -> str:
    """SQL (DuckDB and Spark): the site id of ``alias`` without leading zeros, what tells sites apart. Ids that differ
    only by leading zeros are one site (no identifier scheme holds both); as two installations, it would be paid twice."""
    return f"regexp_replace({alias}.site_id, '^0+', '')"


def same_site(inst: str, event: str) -> str:
    """SQL: the installation ``inst`` is the one of the event ``event`` (same software, same site)."""
    return f"{inst}.sw_id = {event}.sw_id AND {site_key(inst)} = {site_key(event)}"


#: SQL over ``r`` (event) and ``i`` (its installation): the event disagrees with it (``inconsistent-installation``)
INSTALLATION_DIFFERS = ("(r.vendor <> i.vendor OR r.category <> i.category OR r.site_size <> i.site_size "
                        "OR r.site_id <> i.site_id)")
#: an inconsistent event's attributes and its installation's, as ``mismatch_detail`` reads them
MISMATCH_ATTRIBUTES = ("vendor", "category", "site_size", "site_id", "i_vendor", "i_category", "i_size", "i_site")


def data_detail(sha256: str, source: str, ident: str) -> str:
    """SQL (DuckDB and Spark): why an event is ``duplicate-data``, naming the event whose copy of the data counts."""
    return (f"concat('same data (sha256 ', {sha256}, ') from this installation as event ', {ident}, ' of ', {source}, "
            "', counted already')")


#: the data's sha256 of a counted row ``s`` of the event store (its body is the event's line)
_STORE_SHA256 = "json_extract_string(s.body, '$.data.sha256')"
#: a new counted event of ``nk`` comes after the completion of its installation ``i`` (key order: time, source, id)
AFTER_COMPLETION = ("(i.q_time IS NOT NULL AND (nk.time_us > i.q_time OR (nk.time_us = i.q_time AND "
                    "(nk.source > i.q_source OR (nk.source = i.q_source AND nk.id > i.q_id)))))")
_TIME_US = "epoch_us(try_strptime(j.time, ['%Y-%m-%dT%H:%M:%S.%gZ', '%Y-%m-%dT%H:%M:%SZ']))"

EVENT_COLUMNS = (("line", pa.int64()), ("span", pa.int64()), ("source", pa.string()), ("id", pa.string()),
                 ("time_us", pa.int64()), ("digest", pa.binary()), ("body", pa.string()), ("inst_ref", pa.string()),
                 ("vendor", pa.string()), ("sw_id", pa.string()), ("sw_name", pa.string()),
                 ("sw_version", pa.string()), ("site_id", pa.string()), ("site_size", pa.string()),
                 ("site_name", pa.string()), ("wave", pa.string()), ("category", pa.string()), ("kind", pa.string()),
                 ("doc_type", pa.string()), ("sha256", pa.string()))
_FAST_SELECT = (
    "line, span, j.source AS source, j.id AS id, " + _TIME_US + " AS time_us, "
    "left(raw, -1) AS body, j.data.installation_id AS inst_ref, j.data.vendor_id AS vendor, "
    "j.data.software.id AS sw_id, j.data.software.name AS sw_name, j.data.software.version AS sw_version, "
    "j.data.site.id AS site_id, j.data.site.size AS site_size, j.data.site.name AS site_name, j.data.wave AS wave, "
    "j.data.category AS category, j.data.kind AS kind, j.data.document_type AS doc_type, j.data.sha256 AS sha256")


@dataclass(slots=True)
class Counters:
    """What intake did, for the run's statistics."""

    lines: int = 0
    unproven: int = 0
    counted: int = 0
    after_payment: int = 0
    other_wave: int = 0


class Engine:
    """The intake of one run on one DuckDB connection (in memory: a pool of ``memory`` bytes, spilling to ``scratch``)."""

    def __init__(self, ledger: Ledger, store: EventStore, rules: WaveRules, book: LabelBook,
                 label_rows: dict[str, int], known_waves: frozenset[str], kinds: frozenset[str], as_of_us: int,
                 run_id: int, report: RefusalReport, scratch: Path, progress: Callable[[str], None], *,
                 memory: int = DEFAULT_MEMORY_BYTES):
        self.ledger, self.store, self.rules, self.book = ledger, store, rules, book
        self.kinds = kinds
        self.label_rows, self.known_waves, self.as_of_us, self.run_id = label_rows, known_waves, as_of_us, run_id
        self.report, self.progress = report, progress
        self.counters = Counters()
        if pa.default_memory_pool().backend_name != ARROW_POOL:
            pa.set_memory_pool(pa.system_memory_pool())
        scratch.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(config={"memory_limit": f"{memory}B", "temp_directory": str(scratch),
                                          "preserve_insertion_order": False,
                                          "threads": max(1, min(4, os.cpu_count() or 1)), **ALLOCATOR})
        self.con.execute(_FMT_US)
        self.scratch = scratch
        self.seen = SeenKeys()
        #: the data keys (installation, sha256) of the counted events of installations not paid yet (``duplicate-data``)
        self.seen_data = SeenKeys()
        #: the times of the counted events of each store file (seq: first, last): the files an update reads
        self.counted_times: dict[int, tuple[int, int]] = {}
        self._rules_table()
        # a verdict's reason as an enumeration: a string carried through the join to every event doubled its cost
        self.con.execute(f"CREATE TYPE verdict_reason AS ENUM ({', '.join(map(sql_literal, reasons.ALL_REASONS))})")
        combo = ", ".join(f"{k} VARCHAR" for k in COMBO_KEY_COLUMNS)
        self.con.execute(f"CREATE TEMP TABLE verdicts (h UBIGINT, {combo}, lo BIGINT, hi BIGINT, "
                         "reason verdict_reason, label BIGINT, id BIGINT, detail VARCHAR)")
        self.con.execute(f"CREATE TEMP TABLE combos (h UBIGINT, {combo})")  # one row per combination judged
        #: two combinations met share a key (``COMBO_HASH``): the run joins on the attributes themselves
        self.keys_clash = False
        #: events of this run judged again to the refusal the store holds for them: no row written (``_record``); a
        #: repeat later in the run is a duplicate of the line judged here (``_previous``), as if one were
        self.con.execute("CREATE TEMP TABLE judged_again (source VARCHAR, id VARCHAR, file BIGINT, line BIGINT)")
        self.judged_again = 0
        self.verdict_ids = 0  # ``verdicts.id``: a refusal's detail is read by it (not carried through the join)
        self._load_installations()
        self._load_seen()
        self._label_names = ledger.label_names()

    def close(self) -> None:
        self.con.close()

    # ------------------------------------------------------------------ setup
    def _rules_table(self) -> None:
        rows = []
        for category in sorted({c for c in self.rules.wave.categories} | set(self.rules.wave.funding.prices)):
            n, span = self.rules.threshold(category)
            rows.append((category, n, span))
        self.spans_by_category = {c: s for c, _, s in rows}
        self.max_span = max((s for _, _, s in rows), default=0)
        self.con.register("rules_src", pa.table({"category": [r[0] for r in rows], "n": [r[1] for r in rows],
                                                  "span": [r[2] for r in rows]}))
        self.con.execute("CREATE TEMP TABLE rules AS SELECT * FROM rules_src")
        self.con.unregister("rules_src")

    def _load_installations(self) -> None:
        """``inst``: the wave's installations, read from the ledger once per run and kept up to date by intake."""
        self.con.register("inst_src", self.ledger.wave_installations(self.rules.id))
        self.con.execute("CREATE OR REPLACE TEMP TABLE inst AS SELECT * FROM inst_src")
        self.con.unregister("inst_src")

    def _files(self) -> list[Path]:
        return self.store.files()

    def _load_seen(self) -> None:
        """The 64-bit hashes of every recorded key, with the file (seq) each row is in (``seen``)."""
        files = self._files()
        if files:
            t = self.con.sql(f"SELECT hash(source, id) AS h, seq FROM read_parquet({parquet_list(files)})").to_arrow_table()
            self.seen.add(t.column("h").to_numpy(), t.column("seq").to_numpy())
            del t
            # data keys of the installations still to pay only: a paid one's events are after-payment, never counted
            t = self.con.sql(f"SELECT hash(s.installation, {_STORE_SHA256}) AS h, s.seq FROM read_parquet("
                             f"{parquet_list(files)}) s SEMI JOIN (SELECT id FROM inst WHERE status <> 'paid') i "
                             f"ON s.installation = i.id WHERE s.outcome = '{reasons.COUNTED}'").to_arrow_table()
            self.seen_data.add(t.column("h").to_numpy(), t.column("seq").to_numpy())
            del t
            self.counted_times.update((int(seq), (lo, hi)) for seq, lo, hi in self.con.execute(
                f"SELECT seq, min(time_us), max(time_us) FROM read_parquet({parquet_list(files)}) "
                f"WHERE outcome = '{reasons.COUNTED}' GROUP BY seq").fetchall())

    # ------------------------------------------------------------------ one file
    def file(self, path: Path, file_id: int, proof: FileProof, min_lines: int) -> None:
        self.path, self.file_id, self.proof = path, file_id, proof
        spans = proof.spans
        self.span_firsts = np.array([s.first for s in spans], dtype=np.int64)
        self.con.execute("CREATE OR REPLACE TEMP TABLE spans (span BIGINT, reason VARCHAR)")
        self.con.execute("CREATE OR REPLACE TEMP TABLE span_sources (span BIGINT, source VARCHAR)")
        self._bulk_spans([k for k, s in enumerate(spans) if not s.unread])  # the others once read (``_batch``)
        pairs = [(k, src) for k, s in enumerate(spans) for src in sorted(s.sources)]
        if pairs:
            self.con.register("ss_src", pa.table({"span": [p[0] for p in pairs], "source": [p[1] for p in pairs]}))
            self.con.execute("INSERT INTO span_sources SELECT * FROM ss_src")
            self.con.unregister("ss_src")
        if parquet.is_parquet(path):
            copy, settled = parquet.take(path, proof, self.scratch)  # the file's one reading: its spans settled
            try:
                self._bulk_spans(settled)
                for first, rows in parquet.row_batches(copy, min_lines, MAX_BATCH_BYTES):
                    self._rows(first, rows)
            finally:
                copy.unlink(missing_ok=True)
            return
        for batch in batches(path, proof, min_lines):
            self._batch(batch)

    def _bulk_spans(self, which: list[int] | tuple[int, ...]) -> None:
        """The spans ``which`` of the file's proof into ``spans`` (settled: proven or refused)."""
        spans = self.proof.spans
        self.con.register("spans_src", pa.table({"span": pa.array(which, type=pa.int64()),
                                                 "reason": pa.array([spans[k].reason for k in which], pa.string())}))
        self.con.execute("INSERT INTO spans SELECT * FROM spans_src")
        self.con.unregister("spans_src")

    # ------------------------------------------------------------------ one batch
    def _batch(self, batch: Batch) -> None:
        if batch.settled:
            self._bulk_spans(batch.settled)
        slow = register_lines(self.con, batch, self.span_firsts)
        parse_lines(self.con)
        self._events(slow, batch.count)

    def _rows(self, first: int, rows: pa.Table) -> None:
        """A batch of rows of a Parquet events file (lines ``first``..), its spans settled already. A row with more
        than ``FAST_LINE_BYTES`` of text leaves the fast path (as a long line does), its JSON line written by DuckDB
        a few rows at a time (``BIG_ROWS_BYTES``); one with more than ``MAX_LINE_BYTES`` is refused unread."""
        numbers = np.arange(first, first + rows.num_rows, dtype=np.int64)
        span = np.searchsorted(self.span_firsts, numbers, side="right") - 1
        table = rows.add_column(0, "line", pa.array(numbers)).add_column(1, "span", pa.array(span))
        size = parquet.text_bytes(rows)
        big = size > FAST_LINE_BYTES
        parsed = self._rows_sql(table.filter(pa.array(~big)) if big.any() else table, parquet.ROWS_PARSED)
        if big.any():
            pieces = [parsed]
            where = np.flatnonzero(big & (size <= MAX_LINE_BYTES))
            for group in np.split(where, np.flatnonzero(np.diff(np.cumsum(size[where]) // BIG_ROWS_BYTES)) + 1):
                if len(group):
                    lines = self._rows_sql(table.take(pa.array(group)), f"SELECT line, span, raw FROM ({parquet.ROWS_PARSED})")
                    pieces.append(_off_fast_path(lines, parsed.schema))
            huge = np.flatnonzero(size > MAX_LINE_BYTES)
            if len(huge):  # raw NULL: too long to read (``_slow``)
                pieces.append(_off_fast_path(pa.table({"line": pa.array(numbers[huge]), "span": pa.array(span[huge]),
                                                       "raw": pa.nulls(len(huge), pa.string())}), parsed.schema))
            parsed = in_slices(pa.concat_tables(pieces).sort_by("line"))
        self.con.register("px", parsed)
        self._events([], rows.num_rows)

    def _rows_sql(self, rows: pa.Table, query: str) -> pa.Table:
        """``query`` over ``rows`` registered as ``batch_rows``."""
        self.con.register("batch_rows", in_slices(rows))
        try:
            return self.con.sql(query).to_arrow_table(batch_size=SLICE_ROWS)
        finally:
            self.con.unregister("batch_rows")

    def _events(self, slow: list[tuple[int, bytes]], count: int) -> None:
        """The batch parsed in ``px`` (and its lines that are not UTF-8, ``slow``): validated, classified."""
        fast, rest = fast_events(self.con)
        apart = {line for line, _ in slow}  # not UTF-8: judged on their bytes, not as the empty text standing in
        off: list[tuple[int, str | bytes | None]] = [r for r in rest if r[0] not in apart]
        rejected = self._slow(fast, off + list(slow))
        self.counters.lines += count - self.blank
        self._classify(rejected)

    def _slow(self, fast: pa.Table, rest: list[tuple[int, str | bytes | None]]) -> list[tuple[int, int, Rejected]]:
        """The lines off the fast path, through the reference parser: events into ``ev`` (after the ``fast`` ones),
        refusals returned. (A line None: a Parquet row too long to be written as one, ``_rows``.)"""
        rows: dict[str, list[Any]] = {name: [] for name, _ in EVENT_COLUMNS}
        rejected: list[tuple[int, int, Rejected]] = []
        blank = 0
        for line, raw in sorted(rest, key=lambda r: r[0]):
            data = raw.encode("utf-8") if isinstance(raw, str) else raw
            if data is not None and data.endswith(b"\n"):
                data = data[:-2] if data.endswith(b"\r\n") else data[:-1]
            if data is not None and not data.strip():
                blank += 1
                continue
            span = int(np.searchsorted(self.span_firsts, line, side="right") - 1)
            item = parse_event(None if data is None or len(data) > MAX_LINE_BYTES else data)
            if isinstance(item, Rejected):
                rejected.append((line, span, item))
                continue
            for (name, _), v in zip(EVENT_COLUMNS, event_row(line, span, item), strict=True):
                rows[name].append(v)
        self.blank = blank
        if rows["line"]:
            slow = pa.table({n: pa.array(rows[n], type=fast.schema.field(n).type) for n in fast.schema.names})
            self.con.register("ev", pa.concat_tables([fast, slow]))
        return rejected

    # ------------------------------------------------------------------ authentication, wave, time
    def _classify(self, rejected: list[tuple[int, int, Rejected]]) -> None:
        con, c = self.con, self.counters
        known = ", ".join("'" + w.replace("'", "''") + "'" for w in sorted(self.known_waves)) or "NULL"
        wave = self.rules.id.replace("'", "''")
        kinds = ", ".join("'" + k.replace("'", "''") + "'" for k in sorted(self.kinds)) or "NULL"
        # a view (the few joins are cheaper than one more copy of the batch); the bodies stay in ``ev`` until
        # the batch is recorded
        con.execute(
            "CREATE OR REPLACE TEMP VIEW c AS SELECT e.* EXCLUDE (body), CASE WHEN s.reason IS NOT NULL THEN s.reason "
            f"WHEN ss.source IS NULL THEN '{reasons.SOURCE_UNTRUSTED}' "
            f"WHEN e.wave <> '{wave}' THEN CASE WHEN e.wave IN ({known}) THEN '~other' ELSE '{reasons.UNKNOWN_WAVE}' END "
            f"WHEN e.kind NOT IN ({kinds}) THEN '~kind' "
            f"WHEN e.time_us > {self.as_of_us} THEN '{reasons.FUTURE_DATED}' END AS early "
            "FROM ev e JOIN spans s USING (span) LEFT JOIN span_sources ss ON ss.span = e.span AND ss.source = e.source")
        con.execute(f"CREATE OR REPLACE TEMP TABLE refused ({', '.join(f'{n} {t}' for n, t in _REFUSED)})")
        spans = self.proof.spans
        rows = []
        for line, span, item in rejected:  # refused by the reference parser: the few lines off the fast path
            reason, detail = item.reason, item.detail
            if spans[span].reason is not None:
                c.unproven += 1
                reason, detail = spans[span].reason or "", spans[span].detail
            rows.append((line, reason, detail, item.source, item.id))
        self._insert("refused", ("line", "reason", "detail", "source", "event_id"), rows)
        counts = dict(con.execute("SELECT early, count(*) FROM c WHERE early IS NOT NULL GROUP BY early").fetchall())
        c.other_wave += counts.pop("~other", 0)
        c.unproven += sum(n for e, n in counts.items() if e not in (reasons.UNKNOWN_WAVE, "~kind", reasons.FUTURE_DATED))
        if counts:
            self._early_refusals()
        self._wave_events()

    def _early_refusals(self) -> None:
        """Refusals before judgement (``c.early``): span not proven, source untrusted, wave unknown, kind not the
        pack's, future-dated."""
        con, spans = self.con, self.proof.spans
        # the detail of each distinct (reason, value, span): Python per distinct value, never per event
        untrusted, unknown = sql_literal(reasons.SOURCE_UNTRUSTED), sql_literal(reasons.UNKNOWN_WAVE)
        k = (f"CASE c.early WHEN {untrusted} THEN c.source WHEN {unknown} THEN c.wave WHEN '~kind' THEN c.kind "
             "ELSE '' END")
        sp = f"CASE WHEN c.early IN ({unknown}, '~kind') THEN -1 ELSE c.span END"
        details = [(early, key, span, early_detail(early, key, span, spans, self.kinds))
                   for early, key, span in con.execute(f"SELECT DISTINCT early, {k}, {sp} FROM c WHERE early IS NOT NULL "
                                                     f"AND early NOT IN ('~other', {sql_literal(reasons.FUTURE_DATED)})").fetchall()]
        self._insert("early_details", ("early", "k", "span", "detail"), details, create=True)
        future = (f"'event time ' || fmt_us(c.time_us) || ' is after the run''s as-of time ' || "
                  f"{sql_literal(format_us(self.as_of_us))}")
        con.execute(
            f"INSERT INTO refused SELECT c.line, CASE c.early WHEN '~kind' THEN {sql_literal(reasons.INVALID_DATA)} "
            f"ELSE c.early END, coalesce(d.detail, {future}), {_event_fields('c')} FROM c LEFT JOIN early_details d "
            f"ON d.early = c.early AND d.k = {k} AND d.span = {sp} WHERE c.early IS NOT NULL AND c.early <> '~other'")
        con.execute("DROP TABLE early_details")

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], create: bool = False) -> None:
        """Rows computed in Python into ``table`` (created when ``create``), as one Arrow table (one statement)."""
        if create:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ("
                             + ", ".join(f"{c} {_INT_COLUMNS.get(c, 'VARCHAR')}" for c in columns) + ")")
        if rows:
            src = pa.table({c: pa.array([r[i] for r in rows], type=pa.int64() if c in _INT_COLUMNS else pa.string())
                            for i, c in enumerate(columns)})
            self.con.register("insert_src", src)
            self.con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM insert_src")
            self.con.unregister("insert_src")


    # ------------------------------------------------------------------ duplicates, judgement, record
    def _previous(self) -> None:
        """``prev``: what the store holds for the keys of this batch's wave events (latest row of each)."""
        con = self.con
        h = con.sql("SELECT hash(source, id) AS h FROM c WHERE early IS NULL").to_arrow_table().column(0)
        seqs = self.seen.files(h.to_numpy()) if len(h) else set()
        con.execute("CREATE OR REPLACE TEMP TABLE prev (source VARCHAR, id VARCHAR, p_digest BLOB, p_outcome VARCHAR, "
                    "p_run BIGINT, p_file BIGINT, p_line BIGINT)")
        if not seqs:
            return
        names = {s: n for s, n in self.store_names().items() if s in seqs}
        con.execute(
            "INSERT INTO prev SELECT source, id, arg_max(digest, seq), arg_max(outcome, seq), arg_max(run, seq), "
            f"arg_max(file, seq), arg_max(line, seq) FROM read_parquet({parquet_list(names.values())}) s "
            "SEMI JOIN (SELECT source, id FROM c WHERE early IS NULL) k USING (source, id) GROUP BY source, id")
        if self.judged_again:  # judged again by this run, its row not rewritten: where this run judged it
            con.execute(f"CREATE OR REPLACE TEMP TABLE prev AS SELECT p.* REPLACE (CASE WHEN j.line IS NULL THEN p.p_run "
                        f"ELSE {self.run_id} END AS p_run, coalesce(j.file, p.p_file) AS p_file, "
                        "coalesce(j.line, p.p_line) AS p_line) FROM prev p LEFT JOIN judged_again j USING (source, id)")

    def store_names(self) -> dict[int, Path]:
        from conformity.payments.store import registered

        return {seq: self.store.dir / n for seq, n in registered(self.ledger.db)}

    def _wave_events(self) -> None:
        con, c, run = self.con, self.counters, self.run_id
        self._previous()
        # per key (source, id): its first line and digest, and its first line with the stored digest; an
        # aggregate joined back (a hash table), not a window over (source, id): about half the CPU at 200 k events
        materialise(
            con, "w", "WITH k AS MATERIALIZED ("
            "SELECT c.*, p.p_digest, p.p_outcome, p.p_run, p.p_file, p.p_line "
            "FROM c LEFT JOIN prev p USING (source, id) WHERE c.early IS NULL), "
            "g AS (SELECT source, id, arg_min(digest, line) AS first_digest, min(line) AS first_line, "
            "min(CASE WHEN digest = p_digest THEN line END) AS match_line FROM k GROUP BY source, id) "
            "SELECT k.*, g.first_digest, g.first_line, g.match_line, CASE WHEN k.p_digest IS NULL THEN g.first_line "
            f"WHEN k.p_outcome NOT IN ('{reasons.COUNTED}', '{reasons.AFTER_PAYMENT}') AND k.p_run <> {run} "
            f"THEN g.match_line END AS r_line, {COMBO_HASH} AS combo FROM k JOIN g ON k.source = g.source "
            "AND k.id = g.id")
        con.execute("DROP VIEW c")
        self._verdict_table()
        same = same_combination("w", "v", a_is_event=True) if self.keys_clash else "w.combo = v.h"
        materialise(
            con, "r", "SELECT w.*, v.reason AS v_reason, v.label AS v_label, v.id AS v_id FROM w JOIN verdicts v "
            f"ON {same} AND w.time_us >= v.lo AND w.time_us < v.hi WHERE w.line = w.r_line")
        self.ledger.begin()
        self._installations()
        materialise(
            con, "ro", "SELECT r.*, i.id AS inst_id, i.vendor AS i_vendor, "
            "i.category AS i_category, i.site_size AS i_size, i.site_id AS i_site, CASE WHEN r.v_reason IS NOT NULL "
            f"THEN r.v_reason::VARCHAR WHEN {INSTALLATION_DIFFERS} "
            f"THEN '{reasons.INCONSISTENT_INSTALLATION}' WHEN i.status = 'paid' THEN '{reasons.AFTER_PAYMENT}' "
            f"ELSE '{reasons.COUNTED}' END AS outcome "
            f"FROM r LEFT JOIN inst i ON r.v_reason IS NULL AND {same_site('i', 'r')}")
        con.unregister("r")
        self._duplicate_data()
        self._judged_refusals()
        self._duplicates()
        con.unregister("w")
        counted, after = con.execute(
            f"SELECT count(*) FILTER (WHERE outcome = '{reasons.COUNTED}'), "
            f"count(*) FILTER (WHERE outcome = '{reasons.AFTER_PAYMENT}') FROM ro").fetchone() or (0, 0)
        c.counted += counted
        c.after_payment += after
        self._update_installations()
        parts = self._write_refusals()
        self._record()
        self.report.extend(*parts)
        for part in parts[:2]:
            part.unlink()

    def _duplicate_data(self) -> None:
        """``duplicate-data``: a counted event of ``ro`` whose data (sha256) its installation sent already, in an
        event the store holds as counted (an earlier batch or run) or on an earlier line of the batch, counts
        nothing: the data is what proof of use counts, never the events carrying it. ``dd`` (line, detail) names
        the event whose copy counts. Data keys already counted are found like event keys (``seen_data``: hashes,
        then an exact look-up in the few store files that may hold them)."""
        con, counted = self.con, sql_literal(reasons.COUNTED)
        h = con.sql(f"SELECT hash(inst_id, sha256) FROM ro WHERE outcome = {counted}").to_arrow_table().column(0)
        seqs = self.seen_data.files(h.to_numpy()) if len(h) else set()
        prior = "SELECT NULL::BIGINT AS inst_id, NULL AS sha256, NULL AS p_source, NULL AS p_id WHERE false"
        if seqs:
            names = [n for s, n in self.store_names().items() if s in seqs]
            prior = ("SELECT b.inst_id, b.sha256, arg_min(s.source, (s.time_us, s.source, s.id)) AS p_source, "
                     f"arg_min(s.id, (s.time_us, s.source, s.id)) AS p_id FROM read_parquet({parquet_list(names)}) s "
                     f"JOIN (SELECT DISTINCT inst_id, sha256 FROM k) b ON s.installation = b.inst_id AND "
                     f"{_STORE_SHA256} = b.sha256 WHERE s.outcome = {counted} GROUP BY b.inst_id, b.sha256")
        # per data key of the batch, its first line; a key the store holds is refused on every line
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE dd AS WITH k AS (SELECT line, inst_id, sha256, source, id FROM ro "
            f"WHERE outcome = {counted}), p AS ({prior}), f AS (SELECT inst_id, sha256, min(line) AS first_line, "
            "arg_min(source, line) AS f_source, arg_min(id, line) AS f_id FROM k GROUP BY inst_id, sha256 "
            "HAVING count(*) > 1 OR (inst_id, sha256) IN (SELECT (inst_id, sha256) FROM p)) "
            f"SELECT k.line, {data_detail('k.sha256', 'coalesce(p.p_source, f.f_source)', 'coalesce(p.p_id, f.f_id)')} "
            "AS detail FROM k JOIN f USING (inst_id, sha256) LEFT JOIN p USING (inst_id, sha256) "
            "WHERE p.inst_id IS NOT NULL OR k.line <> f.first_line")
        if con.execute("SELECT count(*) FROM dd").fetchall()[0][0]:
            materialise(con, "ro", f"SELECT ro.* REPLACE (CASE WHEN dd.line IS NULL THEN ro.outcome ELSE "
                        f"{sql_literal(reasons.DUPLICATE_DATA)} END AS outcome) FROM ro LEFT JOIN dd USING (line)")

    def _judged_refusals(self) -> None:
        """The refusals of judgement (``ro``): the verdict's detail with each event's time, or the installation's
        attribute that differs (its detail per distinct combination)."""
        con = self.con
        inconsistent = sql_literal(reasons.INCONSISTENT_INSTALLATION)
        attrs = MISMATCH_ATTRIBUTES
        rows = [(*combo, mismatch_detail(*combo)) for combo in con.execute(
            f"SELECT DISTINCT {', '.join(attrs)} FROM ro WHERE outcome = {inconsistent}").fetchall()]
        self._insert("mismatch", (*attrs, "detail"), rows, create=True)
        con.execute(
            f"INSERT INTO refused SELECT ro.line, ro.outcome, CASE WHEN ro.outcome = {inconsistent} THEN m.detail "
            f"WHEN ro.outcome = {sql_literal(reasons.DUPLICATE_DATA)} THEN dd.detail "
            f"ELSE replace(v.detail, {sql_literal(WHEN)}, fmt_us(ro.time_us)) END, {_event_fields('ro')} "
            f"FROM ro LEFT JOIN mismatch m USING ({', '.join(attrs)}) LEFT JOIN verdicts v ON v.id = ro.v_id "
            "LEFT JOIN dd USING (line) "
            f"WHERE ro.outcome NOT IN ({sql_literal(reasons.COUNTED)}, {sql_literal(reasons.AFTER_PAYMENT)})")
        con.execute("DROP TABLE mismatch")
        con.execute("DROP TABLE dd")

    def _duplicates(self) -> None:
        """The repeats (``w``): of a line of this run, or of an event the store holds (a conflict when the
        content differs); the store's file names per distinct file."""
        con = self.con
        files = [r[0] for r in con.execute("SELECT DISTINCT p_file FROM w WHERE p_file IS NOT NULL AND "
                                           "(r_line IS NULL OR line <> r_line)").fetchall()]
        self._insert("file_names", ("file", "path"), [(f, str(self.ledger.file_path(f))) for f in files], create=True)
        where = (f"CASE WHEN here THEN 'run {self.run_id}, ' || {sql_literal(str(self.path))} || ' line ' || r_line "
                 "ELSE 'run ' || p_run || ', ' || f.path || ' line ' || p_line END")
        con.execute(
            f"INSERT INTO refused SELECT line, CASE WHEN conflict THEN {sql_literal(reasons.CONFLICTING_DUPLICATE)} "
            f"ELSE {sql_literal(reasons.DUPLICATE_EVENT)} END, CASE WHEN conflict THEN 'same source and id as the event "
            f"recorded at ' || {where} || ', with different content' ELSE 'already recorded at ' || {where} || "
            f"' (' || CASE WHEN here THEN r_outcome ELSE p_outcome END || ')' END, {_event_fields('x')} "
            "FROM (SELECT w.*, w.digest <> coalesce(w.p_digest, w.first_digest) AS conflict, "
            "w.r_line IS NOT NULL AND w.r_line < w.line AS here, ro.outcome AS r_outcome FROM w "
            "LEFT JOIN ro ON ro.source = w.source AND ro.id = w.id WHERE w.r_line IS NULL OR w.line <> w.r_line) x "
            "LEFT JOIN file_names f ON f.file = x.p_file")
        con.execute("DROP TABLE file_names")

    def _write_refusals(self) -> tuple[Path, Path, list[tuple[str, str, int]]]:
        """The batch's refusals, in line order, as the report's CSV rows and JSON objects (two COPYs) and counts."""
        con = self.con
        csv_part, json_part = self.scratch / "refused.csv", self.scratch / "refused.jsonl"
        name = sql_literal(str(self.path))
        cols = [n for n, _ in _REFUSED]
        csv_cols = ", ".join(f"nullif({c}, '')" for c in cols[3:])
        json_cols = ", ".join(f"coalesce({c}, '') AS {c}" for c in cols[3:])
        con.execute("SET preserve_insertion_order = true")  # the rows in line order
        try:
            con.execute(f"COPY (SELECT 'event' AS kind, reason, nullif(detail, ''), {name} AS file, line, {csv_cols} "
                        f"FROM refused ORDER BY line) TO {sql_literal(csv_part)} (FORMAT csv, HEADER false)")
            con.execute(f"COPY (SELECT 'event' AS kind, reason, coalesce(detail, '') AS detail, {name} AS file, "
                        f"line, {json_cols} FROM refused ORDER BY line) TO {sql_literal(json_part)} (FORMAT json)")
        finally:
            con.execute("SET preserve_insertion_order = false")
        counts = [("event", reason, n) for reason, n in
                  con.execute("SELECT reason, count(*) FROM refused GROUP BY reason ORDER BY reason").fetchall()]
        con.execute("DROP TABLE refused")
        return csv_part, json_part, counts

    def _verdict_table(self) -> None:
        """``verdicts``: per combination of the attributes judgement reads, its verdict on each time interval; kept
        for the run (the rules, labels and as-of time do not change), so a batch computes only its new combinations.

        The batch's combinations are looked up by key (``COMBO_HASH``) and compared attribute by attribute with the
        combination keyed so: a key that two combinations share (the batch's, or one of the batch and one already
        judged) sets ``keys_clash``, and from then on the run finds new combinations and joins verdicts on the
        attributes, as exact as the key but dearer."""
        con = self.con
        con.execute(f"CREATE OR REPLACE TEMP TABLE bc AS SELECT DISTINCT combo AS h, {_COMBO} AS doc_key FROM w "
                    "WHERE line = r_line")
        new: list[tuple[Any, ...]] = []
        if not self.keys_clash:
            same = same_combination("c", "b")
            rows = con.execute(  # the batch's combinations not judged yet, and any that shares a key
                "SELECT b.*, c.h IS NOT NULL AS clash, count(*) OVER (PARTITION BY b.h) > 1 AS twin "
                f"FROM bc b LEFT JOIN combos c ON c.h = b.h WHERE c.h IS NULL OR NOT ({same})").fetchall()
            self.keys_clash = any(r[-2] or r[-1] for r in rows)
            new = [r[:-2] for r in rows]
        if self.keys_clash:
            new = con.execute(f"SELECT h, {_COMBO_KEY} FROM bc ANTI JOIN combos USING ({_COMBO_KEY})").fetchall()
        con.execute("DROP TABLE bc")
        if not new:
            return
        names = ("h", *COMBO_KEY_COLUMNS, "lo", "hi", "reason", "label", "detail")
        rows = [(*combo, *piece) for combo in new for piece in self._intervals(combo[1:])]
        types = {"h": pa.uint64(), "lo": pa.int64(), "hi": pa.int64(), "label": pa.int64()}
        columns = zip(names, zip(*rows, strict=True), strict=True)
        table = pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in columns})
        table = table.append_column("id", pa.array(range(self.verdict_ids, self.verdict_ids + len(rows)), pa.int64()))
        self.verdict_ids += len(rows)
        con.register("verdicts_src", table)
        con.execute("INSERT INTO verdicts BY NAME SELECT * FROM verdicts_src")
        con.execute(f"INSERT INTO combos SELECT DISTINCT h, {_COMBO_KEY} FROM verdicts_src")
        con.unregister("verdicts_src")

    def _intervals(self, combo: tuple[str, ...]) -> list[tuple[int, int, str | None, int | None, str]]:
        """The verdict of ``WaveRules.evaluate`` for one combination, as constant pieces of time (its detail with
        ``WHEN`` for the event's time)."""
        vendor, sw, version, category, size, kind, doc = combo
        wave = self.rules.id
        data = {"wave": wave, "vendor_id": vendor, "software": {"id": sw, "version": version}, "category": category,
                "site": {"size": size}, "kind": kind, "document_type": doc or None}
        points = {self.rules.window_start_us, self.rules.window_end_us}
        for w in self.book.valid.get((sw, wave, category), ()):
            points.update((w.issued_us, w.end_us))
            if w.revoked_us is not None:
                points.add(w.revoked_us)
        points.update(self.book.revoked_versions.get((sw, version, wave), ()))
        cuts = sorted(points)
        pieces: list[tuple[int, int, str | None, int | None, str]] = []
        for lo, hi in zip([-NEVER, *cuts], [*cuts, NEVER], strict=True):
            if lo >= hi:
                continue
            verdict = self.rules.evaluate(data, lo if lo > -NEVER else cuts[0] - 1, self.book, when=WHEN)
            label = self.label_rows[verdict.label.id] if verdict.reason is None and verdict.label else None
            reason = verdict.reason if verdict.reason is not None or verdict.label is not None else reasons.NO_LABEL
            if pieces and pieces[-1][2:] == (reason, label, verdict.detail):
                pieces[-1] = (pieces[-1][0], hi, reason, label, verdict.detail)
            else:
                pieces.append((lo, hi, reason, label, verdict.detail))
        return pieces

    def _installations(self) -> None:
        """``inst``: the wave's installations, with those the first eligible event of a new one creates."""
        con = self.con
        new = con.execute(
            "SELECT sw_id, arg_min(site_id, line), arg_min(inst_ref, line), arg_min(vendor, line), "
            "arg_min(category, line), arg_min(site_size, line), arg_min(sw_name, line), arg_min(site_name, line) "
            f"FROM r ANTI JOIN inst i ON {same_site('i', 'r')} WHERE v_reason IS NULL GROUP BY sw_id, "
            f"{site_key('r')} ORDER BY min(line)").fetchall()
        if new:
            ids = self.ledger.create_installations(self.rules.id, new, self.run_id)
            self._insert("new_inst", ("id", "sw_id", "site_id", "vendor", "category", "site_size"),
                         [(i, n[0], n[1], n[3], n[4], n[5]) for i, n in zip(ids, new, strict=True)], create=True)
            con.execute("INSERT INTO inst (id, sw_id, site_id, vendor, category, site_size, status, best) "
                        "SELECT id, sw_id, site_id, vendor, category, site_size, 'pending', 0 FROM new_inst")
            con.execute("DROP TABLE new_inst")

    def _update_installations(self) -> None:
        """Best window and earliest completion of the installations with newly counted events.

        Only those whose completion may change are recomputed from their counted events near the new ones: a
        pending installation, or a qualified one with a new event before its completion (a window can only end
        at one of its events). A qualified installation whose new events all come after its completion keeps it
        and its best window (the threshold: ``installation_updates``): nothing is read or written for it
        (``AFTER_COMPLETION``), so a batch costs what its events and pending installations cost, not what the
        installations it touches do. Counts are the store's, set once per run (``count_changes``).
        """
        con = self.con
        spans = sorted(set(self.spans_by_category.values()))
        cnt = "CASE k.span " + " ".join(
            f"WHEN {s} THEN count(*) OVER (PARTITION BY k.installation ORDER BY k.time_us RANGE BETWEEN CURRENT ROW "
            f"AND {s} FOLLOWING)" for s in spans) + " END"
        con.execute(f"CREATE OR REPLACE TEMP TABLE nk AS SELECT ro.inst_id AS installation, ro.time_us, ro.source, "
                    f"ro.id FROM ro WHERE outcome = '{reasons.COUNTED}'")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE rng AS SELECT nk.installation, any_value(r.n) AS n, "
            "min(nk.time_us) - any_value(r.span) AS lo, max(nk.time_us) + any_value(r.span) AS hi, "
            f"bool_and({AFTER_COMPLETION}) AS kept FROM nk JOIN inst i ON i.id = nk.installation "
            "JOIN rules r ON r.category = i.category GROUP BY nk.installation")
        bounds = con.execute("SELECT min(lo), max(hi), count(*) FROM rng WHERE NOT kept").fetchone()
        if not bounds or not bounds[2]:
            return
        # the store files with counted events in the time range: the others cannot hold an event of a window
        files = [path for seq, path in self.store_names().items() if seq in self.counted_times
                 and self.counted_times[seq][0] <= bounds[1] and self.counted_times[seq][1] >= bounds[0]]
        prior = ""
        if files:
            prior = (f"UNION ALL SELECT s.installation, s.time_us, s.source, s.id FROM read_parquet("
                     f"{parquet_list(files)}) s JOIN rng ON s.installation = rng.installation AND NOT rng.kept "
                     f"AND s.time_us BETWEEN rng.lo AND rng.hi WHERE s.outcome = '{reasons.COUNTED}' "
                     f"AND s.time_us BETWEEN {bounds[0]} AND {bounds[1]}")
        rows = con.execute(
            "SELECT installation, max(cnt), min(CASE WHEN back IS NOT NULL AND time_us - back <= span "
            "THEN {'t': time_us, 's': source, 'i': id} END) FROM ("
            f"SELECT k.*, lag(k.time_us, k.n - 1) OVER (PARTITION BY k.installation ORDER BY k.time_us, k.source, "
            f"k.id) AS back, {cnt} AS cnt FROM (SELECT u.*, r.n, r.span FROM (SELECT nk.* FROM nk SEMI JOIN rng "
            f"ON rng.installation = nk.installation AND NOT rng.kept {prior}) u "
            "JOIN inst i ON i.id = u.installation JOIN rules r ON r.category = i.category) k) GROUP BY installation"
        ).fetchall()
        state = {r[0]: r[1:] for r in con.execute(
            "SELECT i.id, i.status, i.best, i.q_time, i.q_source, i.q_id, rng.n FROM inst i "
            "JOIN rng ON rng.installation = i.id AND NOT rng.kept").fetchall()}
        updates = installation_updates(rows, state)
        self.ledger.update_installations(updates)
        if updates:  # the same in ``inst`` (the ledger's transaction commits with the batch; a failure ends the run)
            cols = ("status", "best", "q_time", "q_source", "q_id", "id")
            self.con.register("upd_src", pa.table({c: pa.array([u[i] for u in updates], type=pa.string() if c in (
                "status", "q_source", "q_id") else pa.int64()) for i, c in enumerate(cols)}))
            # rebuilt rather than updated: DuckDB's UPDATE of a few thousand rows took 0.3 s (versioned rows)
            updated = ", ".join(f"CASE WHEN u.id IS NULL THEN i.{c} ELSE u.{c} END AS {c}" for c in cols[:-1])
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE inst AS SELECT i.* REPLACE ({updated}) FROM inst i "
                             "LEFT JOIN upd_src u ON u.id = i.id")
            self.con.unregister("upd_src")

    def _record(self) -> None:
        """The batch's recorded events into a new store file; then one commit registers it with the installations.

        An event judged again to the refusal the store holds for it (``UNCHANGED``) gets no new row, only a line in
        ``judged_again`` for the rest of the run: a nightly run over every file again adds the events whose outcome
        changed, never every refused event again."""
        con = self.con
        unchanged = con.execute(f"SELECT count(*) FROM ro WHERE {UNCHANGED}").fetchall()[0][0]
        if unchanged:
            con.execute(f"INSERT INTO judged_again SELECT source, id, {self.file_id}, line FROM ro WHERE {UNCHANGED}")
            self.judged_again += unchanged
            materialise(con, "ro", f"SELECT * FROM ro WHERE NOT ({UNCHANGED})")
        seq = self.store.next_seq()
        final = self.store.dir / f"{self.run_id:06d}-{seq:08d}.parquet"
        tmp = final.with_name("." + final.name + ".tmp")
        rows, new, first, last = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE p_digest IS NULL), min(time_us) FILTER (WHERE outcome = "
            f"'{reasons.COUNTED}'), max(time_us) FILTER (WHERE outcome = '{reasons.COUNTED}') FROM ro").fetchall()[0]
        # (fetchall, not fetchone: a result left unfinished makes ``unregister`` below refuse to run)
        if rows:
            settled = f"('{reasons.COUNTED}', '{reasons.AFTER_PAYMENT}')"
            con.execute(
                "COPY (SELECT source, id, coalesce(p_digest, digest) AS digest, time_us, outcome, "
                f"CASE WHEN outcome IN {settled} THEN inst_id END AS installation, "
                f"CASE WHEN outcome IN {settled} THEN v_label END AS label, {self.run_id}::BIGINT AS run, "
                f"{self.file_id}::BIGINT AS file, line, CASE WHEN outcome = '{reasons.COUNTED}' THEN body END AS body, "
                f"{seq}::BIGINT AS seq FROM ro LEFT JOIN (SELECT line, body FROM ev) b USING (line)) "
                f"TO {sql_literal(tmp)} (FORMAT parquet, ROW_GROUP_SIZE {ROW_GROUP})")
            finish_file(tmp, final)
            self.store.register(seq, self.run_id, final.name, rows, new)
            h = con.sql("SELECT hash(source, id) FROM ro").to_arrow_table().column(0).to_numpy()
            d = con.sql(f"SELECT hash(inst_id, sha256) FROM ro WHERE outcome = '{reasons.COUNTED}'").to_arrow_table()
        con.unregister("ro")
        con.unregister("ev")
        self.ledger.commit()
        if rows:
            self.seen.add(h, seq)
            self.seen_data.add(d.column(0).to_numpy(), seq)
            if first is not None:
                self.counted_times[seq] = (first, last)

    def count_changes(self) -> list[tuple[int, int]]:
        """(counted, id) of the installations whose number of counted events in the store differs from the ledger's.

        Counts are the store's, derived once per run after intake (one scan of two columns): a batch writes only
        what changes an installation's status, and a run killed after some commits is made whole by the next."""
        con, files = self.con, self._files()
        con.register("ledger_counts", self.ledger.installation_counts())
        store = (f"SELECT installation AS id, count(*) AS n FROM read_parquet({parquet_list(files)}) "
                 f"WHERE outcome = '{reasons.COUNTED}' GROUP BY installation" if files else
                 "SELECT NULL::BIGINT AS id, 0::BIGINT AS n WHERE false")
        rows = con.execute(f"SELECT coalesce(s.n, 0), l.id FROM ledger_counts l LEFT JOIN ({store}) s USING (id) "
                           "WHERE coalesce(s.n, 0) <> l.counted ORDER BY l.id").fetchall()
        con.unregister("ledger_counts")
        return [(int(n), int(i)) for n, i in rows]

    # ------------------------------------------------------------------ settlement
    def prepare_proofs(self, due: list[tuple[int, int, str, str, int, int]]) -> None:
        """``proof_rows``: for each (installation, completion time, source, id, n), the n counted events ending
        at its completion (one pass over the store for the whole settlement)."""
        con = self.con
        files = self._files()
        con.execute("CREATE OR REPLACE TEMP TABLE proof_rows (installation BIGINT, time_us BIGINT, source VARCHAR, "
                    "id VARCHAR, label BIGINT, body VARCHAR)")
        if not due or not files:
            return
        con.register("due_src", pa.table({"installation": [d[0] for d in due], "qt": [d[1] for d in due],
                                          "qs": [d[2] for d in due], "qi": [d[3] for d in due],
                                          "n": [d[4] for d in due], "lo": [d[1] - d[5] for d in due]}))
        con.execute(
            "CREATE OR REPLACE TEMP TABLE proof_keys AS SELECT installation, time_us, source, id, label, seq, line FROM ("
            "SELECT s.installation, s.time_us, s.source, s.id, s.label, s.seq, s.line, row_number() OVER (PARTITION BY "
            "s.installation ORDER BY s.time_us DESC, s.source DESC, s.id DESC) AS rn, d.n "
            f"FROM read_parquet({parquet_list(files)}) s JOIN due_src d "
            f"ON s.installation = d.installation WHERE s.outcome = '{reasons.COUNTED}' AND s.time_us >= d.lo AND "
            "(s.time_us < d.qt OR (s.time_us = d.qt AND (s.source < d.qs OR (s.source = d.qs AND s.id <= d.qi))))) "
            "WHERE rn <= n")
        con.unregister("due_src")
        con.execute(
            "INSERT INTO proof_rows SELECT k.installation, k.time_us, k.source, k.id, k.label, s.body "
            f"FROM read_parquet({parquet_list(files)}) s JOIN proof_keys k ON s.seq = k.seq AND s.line = k.line")
        con.execute("DROP TABLE proof_keys")

    def proofs(self, installations: list[int]) -> dict[int, list[tuple[Any, ...]]]:
        """The proof rows of these installations (``prepare_proofs``), in key order:
        (time, source, id, label id, vendor name, body)."""
        if not installations:
            return {}
        self.con.register("ids_src", pa.table({"installation": pa.array(installations, type=pa.int64())}))
        rows = self.con.execute("SELECT p.installation, p.time_us, p.source, p.id, p.label, p.body FROM proof_rows p "
                                "SEMI JOIN ids_src USING (installation) "
                                "ORDER BY p.installation, p.time_us, p.source, p.id").fetchall()
        self.con.unregister("ids_src")
        out: dict[int, list[tuple[Any, ...]]] = {}
        for inst, time_us, source, ident, label, body in rows:
            label_id, vendor_name = self._label_names[label]
            out.setdefault(inst, []).append((time_us, source, ident, label_id, vendor_name, body))
        return out


def _off_fast_path(lines: pa.Table, schema: pa.Schema) -> pa.Table:
    """Rows (line, span, raw) as rows of ``px`` (``schema``) that the fast path leaves to the reference parser."""
    columns = {f.name: lines.column(f.name).cast(f.type) if f.name in lines.column_names else pa.nulls(
        lines.num_rows, f.type) for f in schema}
    return pa.table(columns, schema=schema)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def register_lines(con: duckdb.DuckDBPyConnection, batch: Batch, span_firsts: np.ndarray) -> list[tuple[int, bytes]]:
    """Register ``batch_lines`` (line, span, raw with its end) on ``con``; lines that are not UTF-8, and lines
    longer than ``MAX_LINE_BYTES`` (refused whatever they hold), are returned apart (their text in the table is
    empty): DuckDB never holds them."""
    n = batch.count
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = batch.ends
    numbers = np.arange(batch.first, batch.first + n, dtype=np.int64)
    raw = pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(batch.data)])
    apart: list[tuple[int, bytes]] = []
    too_long = np.diff(offsets) > MAX_LINE_BYTES + 2  # with its end (CR LF)
    text: pa.Array | None = None
    if not too_long.any():
        try:
            text = raw.cast(pa.large_string())
        except pa.ArrowInvalid:  # not all UTF-8
            pass
    if text is None:
        keep = []
        for i, v in enumerate(raw.to_pylist()):
            if too_long[i] or not _is_utf8(v):
                apart.append((int(numbers[i]), v))
                keep.append(b"")
            else:
                keep.append(v)
        text = pa.array(keep, type=pa.large_binary()).cast(pa.large_string(), safe=False)
    span = np.searchsorted(span_firsts, numbers, side="right") - 1
    con.register("batch_lines", in_slices(pa.table({"line": numbers, "span": span, "raw": text})))
    return apart


#: the longest line DuckDB parses (``PARSED``): the longer ones (an event the schema allows is far shorter, but
#: escapes may make it longer) go to the reference parser, one at a time. DuckDB parses a vector of 2,048 lines at
#: once: 40 lines of 1 MiB, unsigned junk anyone could drop beside the events, took more than its memory limit
FAST_LINE_BYTES = 8192
#: a Parquet file's rows longer than ``FAST_LINE_BYTES`` are written as JSON lines by DuckDB in groups of about this
#: many bytes of text (``Engine._rows``)
BIG_ROWS_BYTES = 8 << 20

#: the fast path's first statement over ``batch_lines``: json_transform (not strict: a value it cannot convert is NULL)
#: on the valid lines of at most ``FAST_LINE_BYTES`` only (CASE's branches in order: json_valid never sees a longer
#: one); ``_PRODUCED`` then keeps on the fast path only the lines whose every value it read exactly
PARSED = (f"SELECT line, span, raw, CASE WHEN strlen(raw) > {FAST_LINE_BYTES} THEN NULL WHEN json_valid(raw) "
          f"THEN json_transform(raw, '{SHAPE}') END AS j, NULL::BOOLEAN AS exact FROM batch_lines")


def parse_lines(con: duckdb.DuckDBPyConnection) -> None:
    """``px`` (line, span, raw, j) from ``batch_lines`` (``PARSED``), materialised once (in one statement with the
    fast path DuckDB evaluates ``json_transform`` again for each field read, 2.5x the CPU time at 200 k lines)."""
    materialise(con, "px", PARSED)
    con.unregister("batch_lines")


def in_slices(table: pa.Table) -> pa.Table:
    """``table`` as record batches of ``SLICE_ROWS`` rows, so that DuckDB scans it on every thread."""
    return pa.Table.from_batches(table.to_batches(max_chunksize=SLICE_ROWS), schema=table.schema)


def materialise(con: duckdb.DuckDBPyConnection, name: str, query: str) -> pa.Table:
    """The result of ``query`` as Arrow record batches of ``SLICE_ROWS`` rows, registered as ``name`` (a batch's
    rows in a DuckDB table would be one row group, scanned by one thread: the fast path's rules, digest and
    byte-for-byte check take twice the time on two cores, and every later step of the batch reads its tables)."""
    table = con.sql(query).to_arrow_table(batch_size=SLICE_ROWS)
    con.register(name, table)
    return table


def fast_events(con: duckdb.DuckDBPyConnection) -> tuple[pa.Table, list[tuple[int, str | None]]]:
    """The fast path: ``ev`` (``EVENT_COLUMNS`` and the digest) from the parsed lines or rows of ``px`` that DuckDB
    read exactly and that pass every rule, registered and returned; the other lines (line, raw), in line order,
    for the reference parser."""
    ev = materialise(con, "ev", f"SELECT {_FAST_SELECT}, unhex(left(sha256({_CANONICAL}), 32)) AS digest FROM px "
                     f"WHERE j IS NOT NULL AND strlen(raw) <= {MAX_LINE_BYTES + 1} AND {_PRODUCED} "
                     f"AND {_RULES} AND {_TIME_US} IS NOT NULL")
    rest = con.execute("SELECT line, raw FROM px ANTI JOIN ev USING (line) ORDER BY line").fetchall()
    con.unregister("px")
    return ev, rest


def event_row(line: int, span: int, item: Event) -> tuple[Any, ...]:
    """An event the reference parser read, as a row of the events table (``EVENT_COLUMNS``' order)."""
    d = item.data
    return (line, span, item.source, item.id, item.time_us, item.digest, item.raw, d["installation_id"],
            d["vendor_id"], d["software"]["id"], d["software"]["name"], d["software"]["version"], d["site"]["id"],
            d["site"]["size"], d["site"]["name"], d["wave"], d["category"], d["kind"], d["document_type"], d["sha256"])


def _event_fields(alias: str) -> str:
    """What a refusal says of an event (source … site), from a table of events under ``alias``."""
    return ", ".join(f"{alias}.{c}" for c in ("source", "id")) + f", fmt_us({alias}.time_us), " + ", ".join(
        f"{alias}.{c}" for c in ("wave", "vendor", "sw_id", "sw_version", "site_id"))


def early_detail(early: str, key: str, span: int, spans: list[Span], kinds: frozenset[str]) -> str:
    """The detail of a refusal before judgement (``early``: a span's reason, source-untrusted, unknown-wave or
    ``~kind``), per distinct value ``key`` (the source, wave or kind) and span."""
    if early == reasons.SOURCE_UNTRUSTED:
        return _untrusted(key, spans[span])
    if early == reasons.UNKNOWN_WAVE:
        return f"wave {key!r} is not in the catalog"
    if early == "~kind":
        return f"kind {key!r} is not a data kind of the wave's pack ({', '.join(sorted(kinds))})"
    return spans[span].detail


def mismatch_detail(vendor: str, category: str, size: str, site: str, i_vendor: str, i_category: str, i_size: str,
                    i_site: str) -> str:
    """Why an event disagrees with its installation (the first attribute that differs: ``MISMATCH_ATTRIBUTES``)."""
    return next(f"{what} {theirs!r} differs from the installation's {mine!r}"
                for what, mine, theirs in (("vendor", i_vendor, vendor), ("category", i_category, category),
                                           ("site size", i_size, size), ("site id", i_site, site)) if mine != theirs)


def installation_updates(rows: list[tuple[Any, ...]], state: dict[int, tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The ledger's updates (status, best, q_time, q_source, q_id, id) from each installation's (id, best window,
    earliest completion {t, s, i}) over its counted events and its ``state`` (status, best, q_time, q_source, q_id,
    threshold n): only those that change. The best window is kept up to the threshold: exact while the installation
    is pending, ``n`` once qualified (whatever order or batches the events came in)."""
    updates = []
    for inst, best, completion in rows:
        status, old_best, q_time, q_source, q_id, n = was = state[inst]
        old = None if q_time is None else (q_time, q_source, q_id)
        new = None if completion is None else (completion["t"], completion["s"], completion["i"])
        done = min((k for k in (old, new) if k is not None), default=None)
        if done is not None and status == "pending":
            status = "qualified"
        now = (status, min(max(old_best, best), n), *(done or (None, None, None)))
        if now != was[:5]:
            updates.append((*now, inst))
    return updates


def _untrusted(source: str, span: Span) -> str:
    vouched = ", ".join(sorted(span.sources)) or "none"
    return (f"source {source!r} is not one that segment {span.seq}'s signing key vouches for (and the segment "
            f"declares): {vouched}")


def digest_of(event: dict[str, Any]) -> bytes:
    """The content digest intake records (sha256 of the canonical JSON, first 16 bytes)."""
    return hashlib.sha256(json.dumps(event, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode("utf-8")).digest()[:16]


__all__ = ["Counters", "Engine", "Event", "digest_of"]
