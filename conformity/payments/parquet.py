"""Events files in Parquet: the layout, its check, and the one reading of a sealed file (copied while hashed).

Layout (``conformity/schemas/event-segments.md``, "Parquet events files"): one row per data-received event,
in the order emitted; one column per attribute of ``envelope.SHAPE`` with its type (UTF-8 strings; ``data`` a
struct of structs; ``data.bytes`` a 64-bit integer), in any order; a null is an attribute the event does not
have. No other column (the layout carries no extension attribute). Row ``n`` is line ``n`` of the file for the
segments and the reports. An event is its row: intake judges the JSON object of its non-null attributes
(``ROWS_PARSED``), with the rules, refusals and reasons of a JSON line.

A sealed Parquet file has one signed segment over all its bytes (``segments.seal_whole``: offset 0, the file's
length, the SHA-256 of the whole file, its rows as lines). Intake copies the file into the run's private scratch
folder while hashing it (:func:`take`: the file's one reading), settles its segments from that hash and the
copy's row count (``authenticate.settle``), then reads the copy: the rows parsed are the bytes hashed, whatever
happens to the file meanwhile.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from conformity.errors import InputError
from conformity.payments.authenticate import FileProof, settle
from conformity.payments.envelope import SHAPE
from conformity.payments.files import copy_file
from conformity.payments.store import sql_literal
from conformity.segments import seal_whole, sidecar_path
from conformity.signing import SigningKey

MAGIC = b"PAR1"
SUFFIX = ".parquet"
CHUNK = 8 << 20
_TYPES = {"VARCHAR": pa.string(), "BIGINT": pa.int64()}


def _field(name: str, shape: Any) -> pa.Field:
    if isinstance(shape, dict):
        return pa.field(name, pa.struct([_field(k, v) for k, v in shape.items()]))
    return pa.field(name, _TYPES[shape])


#: the columns of a Parquet events file (``envelope.SHAPE``'s attributes and types, in its order)
LAYOUT = pa.schema([_field(k, v) for k, v in json.loads(SHAPE).items()])


def _row(shape: dict[str, Any], prefix: str) -> str:
    """A DuckDB struct of ``shape``'s fields read from the columns under ``prefix``, in ``SHAPE``'s order; a null
    struct stays null (an absent ``data`` is not an empty one)."""
    parts = []
    for name, sub in shape.items():
        ref = f'{prefix}"{name}"'
        value = f"CASE WHEN {ref} IS NULL THEN NULL ELSE {_row(sub, ref + '.')} END" if isinstance(sub, dict) else ref
        parts.append(f"'{name}': {value}")
    return "{" + ", ".join(parts) + "}"


#: the fast path's first statement (``engine.PARSED``) over a batch of rows (``batch_rows``: line, span and the
#: layout's columns): ``j`` the row's values as ``json_transform`` types them, ``raw`` the JSON line of its non-null
#: attributes (what the reference parser reads when the row leaves the fast path: a null is an absent attribute),
#: ``exact`` true when that line is ``to_json(j)`` by construction (no null: the fast path need not check it)
ROWS_PARSED = (
    "SELECT line, span, CASE WHEN contains(t, 'null') THEN json_merge_patch('{}', t) ELSE t END || chr(10) AS raw, j, "
    "CASE WHEN NOT contains(t, 'null') THEN true END AS exact "
    f"FROM (SELECT line, span, j, to_json(j) AS t FROM (SELECT line, span, {_row(json.loads(SHAPE), '')} AS j "
    "FROM batch_rows))")


def text_bytes(rows: pa.Table) -> np.ndarray:
    """Each row's bytes of text (its string values, nested ones too): its JSON line is at least as long."""
    total = np.zeros(rows.num_rows, dtype=np.int64)
    for column in rows.columns:
        total += _text_bytes(column.combine_chunks())
    return total


def _text_bytes(values: pa.Array) -> np.ndarray:
    if pa.types.is_struct(values.type):
        out = np.zeros(len(values), dtype=np.int64)
        for field in values.flatten():  # each field's values, null where the struct is
            out += _text_bytes(field)
        return out
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return pc.fill_null(pc.binary_length(values), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.zeros(len(values), dtype=np.int64)


def is_parquet(path: Path) -> bool:
    """Whether ``path`` is to be read as Parquet: it starts with Parquet's magic, or is named ``*.parquet``."""
    if path.suffix.lower() == SUFFIX:
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _type_name(t: pa.DataType) -> str:
    return "string" if t in (pa.string(), pa.large_string()) else str(t)


def layout_problems(schema: pa.Schema) -> list[str]:
    """What keeps ``schema`` from being the layout: each missing, extra, mistyped or repeated column, by its dotted
    path."""
    problems: list[str] = []

    def compare(want: Iterable[pa.Field], got: Iterable[pa.Field], prefix: str) -> None:
        fields = list(got)
        names = Counter(f.name for f in fields)
        # a name twice: readers differ on which one is the attribute (DuckDB renames the second ``<name>_1``)
        problems.extend(f"column {prefix + name} appears {n} times (readers differ on which one is the attribute)"
                        for name, n in names.items() if n > 1)
        have = {f.name: f for f in fields}
        wanted = {f.name: f for f in want}
        for name, w in wanted.items():
            path = prefix + name
            g = have.get(name)
            if names[name] > 1:
                continue
            if g is None:
                problems.append(f"column {path} is missing")
            elif pa.types.is_struct(w.type):
                if not pa.types.is_struct(g.type):
                    problems.append(f"column {path} is {_type_name(g.type)}, the layout wants a struct")
                else:
                    compare(list(w.type), list(g.type), path + ".")
            elif not (g.type == w.type or (w.type == pa.string() and g.type == pa.large_string())):
                problems.append(f"column {path} is {_type_name(g.type)}, the layout wants {_type_name(w.type)}")
        problems.extend(f"column {prefix + name} is not in the layout (no extension attribute)"
                        for name in names if name not in wanted)

    compare(list(LAYOUT), list(schema), "")
    return problems


def check(path: Path) -> int:
    """The rows of the Parquet events file ``path``; InputError naming the file if it cannot be read or is not laid
    out as ``LAYOUT`` (every problem listed)."""
    if not path.is_file():
        raise InputError("not found (or not a file)", file=path)
    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({exc})", file=path) from exc
    problems = layout_problems(schema)
    if problems:
        raise InputError("not a Parquet events file of usine's layout: " + "; ".join(problems)
                         + " (conformity/schemas/event-segments.md, 'Parquet events files')", file=path)
    return int(meta.num_rows)


def take(path: Path, proof: FileProof, folder: Path) -> tuple[Path, list[int]]:
    """Copy ``path`` into ``folder`` while hashing it, then settle each unread span of ``proof`` from that hash and
    the copy's rows: the copy (which the caller reads, then removes) and the spans settled."""
    copy = copy_file(folder, path.name)
    try:
        h = hashlib.sha256()
        with open(path, "rb") as src, open(copy, "wb") as out:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
        rows = check(copy)
    except BaseException:
        copy.unlink(missing_ok=True)
        raise
    digest, settled = h.hexdigest(), []
    for k, s in enumerate(proof.spans):
        if s.unread and s.last is not None:
            settle(proof, k, digest, max(0, min(rows, s.last) - s.first + 1))
            settled.append(k)
    return copy, settled


#: rows are read from the file in pieces of this many, gathered into batches
PIECE = 8192


def row_batches(copy: Path, rows: int, max_bytes: int) -> Iterator[tuple[int, pa.Table]]:
    """The rows of a Parquet events file in batches (first line, table), in file order: at least ``rows`` rows, or
    fewer whose Arrow size reaches two thirds of ``max_bytes`` (a row's JSON line is ≈ 1.5x its Arrow size: 699 against
    457 bytes for the benchmark's events, so a batch holds about as many events as a JSON-lines batch of
    ``max_bytes``: the memory bound is the same)."""
    first, pieces, count, size = 1, [], 0, 0
    for piece in pq.ParquetFile(copy).iter_batches(batch_size=min(PIECE, max(1, rows)), columns=LAYOUT.names):
        pieces.append(piece)
        count += piece.num_rows
        size += piece.nbytes
        if count >= rows or size * 3 >= max_bytes * 2:
            yield first, pa.Table.from_batches(pieces)
            first, pieces, count, size = first + count, [], 0, 0
    if pieces:
        yield first, pa.Table.from_batches(pieces)


#: RFC 3339 date-times (``envelope``'s pattern), for DuckDB's regexp_full_match
RFC3339 = r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"


# ---------------------------------------------------------------------- writing (the infrastructure's side)
def write_events(path: Path, events: Iterable[dict[str, Any]], row_group_size: int | None = None) -> int:
    """Write events (dicts of the layout's attributes; a missing attribute is a null) as a Parquet events file;
    the rows written. Attributes outside the layout are an error (ValueError), never dropped."""
    rows = list(events)
    for n, ev in enumerate(rows, 1):
        extra = set(ev) - set(LAYOUT.names)
        if extra:
            raise ValueError(f"event {n}: {', '.join(sorted(extra))} not in the Parquet layout")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=LAYOUT), path, row_group_size=row_group_size)
    return len(rows)


def from_jsonl(src: Path, dest: Path) -> int:
    """Convert a JSON-lines events file to a Parquet events file (each line's attributes of the layout, typed as
    ``json_transform`` reads them; lines that are not JSON, and blank lines, skipped); the rows written. For
    producers and benchmarks."""
    import duckdb

    dest.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"COPY (SELECT j.* FROM (SELECT json_transform(json, '{SHAPE}') AS j FROM "
                    f"read_json_objects({sql_literal(src)}, format='newline_delimited', ignore_errors=true))) TO {sql_literal(dest)} "
                    "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)")
        return int(con.execute(f"SELECT count(*) FROM read_parquet({sql_literal(dest)})").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def seal(path: Path, key: SigningKey) -> dict[str, Any]:
    """Seal a Parquet events file (``segments.seal_whole``), its sources and time range read from its rows (times
    that are RFC 3339 date-times, compared as instants)."""
    import duckdb

    rows = check(path)
    con = duckdb.connect()
    try:
        where = sql_literal(path)
        sources = [s for (s,) in con.execute(f"SELECT DISTINCT source FROM read_parquet({where}) "
                                             "WHERE source IS NOT NULL ORDER BY source LIMIT 1001").fetchall()]
        lo, hi = con.execute(
            f"SELECT arg_min(time, t), arg_max(time, t) FROM (SELECT time, TRY_CAST(time AS TIMESTAMPTZ) AS t "
            f"FROM read_parquet({where}) WHERE regexp_full_match(time, '{RFC3339}')) WHERE t IS NOT NULL").fetchone() or (None, None)
    finally:
        con.close()
    if len(sources) > 1000:
        raise ValueError(f"{path}: more than 1,000 sources: a segment names at most 1,000")
    return seal_whole(path, key, count=rows, sources=sources, time_min=lo, time_max=hi)


def write_sealed(path: Path, events: Iterable[dict[str, Any]], key: SigningKey, row_group_size: int | None = None) -> Path:
    """Write events as a Parquet events file and seal it (tests, demos)."""
    for old in (path, sidecar_path(path)):
        old.unlink(missing_ok=True)
    write_events(path, events, row_group_size)
    seal(path, key)
    return path
