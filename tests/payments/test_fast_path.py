"""Property: the DuckDB fast path is never looser than the reference parser, on generated edge-case lines (and rows
of Parquet events files: each judged as the JSON line of its non-null attributes).

Lines start as the infrastructure writes them (compact, its key order) and get one or more changes: a value of
another type, a member added or removed, a repeated key, an escape, a number or a time in another form,
spaces, a character JSON writers may escape differently, bytes that are not UTF-8. Each line lands in exactly
one place (the fast path's events, the lines left to the reference parser, or the lines that are not UTF-8), and
every line the fast path accepts is one ``intake.parse_event`` accepts with the same identity, time, digest, data
and raw text.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformity.payments.engine import fast_events, materialise, parse_lines, register_lines
from conformity.payments.intake import Event, parse_event
from conformity.payments.loader import Batch
from tests.payments.builders import events_for, installation, line_of

BASE = events_for(installation("750100011", "M"), 4) + events_for(installation("750100012", "S"), 2)
#: (path to a member, as keys)
PATHS = [(k,) for k in BASE[0] if k != "data"] + [("data", k) for k in BASE[0]["data"] if k not in ("software", "site")] + [
    ("data", "software", k) for k in BASE[0]["data"]["software"]] + [("data", "site", k) for k in BASE[0]["data"]["site"]]
ODD_VALUES = [None, True, 0, -1, 1.5, 1024.0, 10**20, "", " ", "x" * 301, "é" * 60, "\t", "\x7f", "\u2028", "A" * 64,
              "0" * 64, [], {}, "1.0", "com.example.data-received", "2026-06-01T09:00:00Z", "2026-06-01T09:00:00.5Z",
              "2026-06-01T09:00:00.123456Z", "2026-06-01T09:00:60Z", "2026-06-01 09:00:00Z", "2026-06-01T09:00:00+00:00",
              "HOSPITAL", "M", "m", "document", "message", "34106-7", "2026-W1", "urn:x", "http://a b", "ins-1"]
#: changes to the text of a compact line (``n`` picks where)
TEXT_CHANGES = ("space", "repeat-key", "escape-letter", "escape-slash", "number-form", "trailing", "crlf",
                "not-utf8", "truncate", "bom", "upper-unicode-escape")


def _set(ev: dict[str, Any], path: tuple[str, ...], value: Any, delete: bool = False) -> None:
    node = ev
    for k in path[:-1]:
        if not isinstance(node.get(k), dict):
            return
        node = node[k]
    if delete:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


def _text_change(line: str, change: str, n: int) -> bytes:
    """One change to the text of a compact line."""
    data = line.encode("utf-8")
    if change == "space":
        commas = [i for i, ch in enumerate(line) if ch in ",:"]
        i = commas[n % len(commas)] + 1
        return (line[:i] + " " + line[i:]).encode("utf-8")
    if change == "repeat-key":
        return (line[:-1] + ',"id":"repeated"}').encode("utf-8") if n % 2 else (
            line.replace('"data":{', '"data":{"kind":"message",', 1)).encode("utf-8")
    if change == "escape-letter":
        i = [k for k, ch in enumerate(line) if ch.isalpha() and line[k - 1] != "\\"][n % 50]
        return (line[:i] + f"\\u{ord(line[i]):04x}" + line[i + 1:]).encode("utf-8")
    if change == "escape-slash":
        return line.replace("/", "\\/", 1).replace(":", "\\u003a", n % 2).encode("utf-8")
    if change == "number-form":
        form = ("1e3", "1.0e3", "1000.0", "01000", "-0", "1E3", "1000 ")[n % 7]
        return json.dumps(json.loads(line), separators=(",", ":"), ensure_ascii=False).replace(
            '"bytes":' + str(json.loads(line)["data"]["bytes"]), '"bytes":' + form).encode("utf-8")
    if change == "trailing":
        return data + (b" ", b"\t", b" x", b"{}", b",")[n % 5]
    if change == "crlf":
        return data + b"\r"
    if change == "not-utf8":
        i = n % len(data)
        return data[:i] + (b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf")[n % 4] + data[i:]
    if change == "truncate":
        return data[: n % len(data)]
    if change == "bom":
        return b"\xef\xbb\xbf" + data
    # upper-unicode-escape: a non-ASCII character written as an escape (same value, other bytes)
    return line.replace("e", "\\u00e9", 1).encode("utf-8") if n % 2 else line.replace('"M"', '"\\u004d"').encode()


@st.composite
def edge_lines(draw: st.DrawFn) -> bytes:
    ev = json.loads(json.dumps(draw(st.sampled_from(BASE))))
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(("value", "delete", "extra", "data-extra", "reorder")))
        path = draw(st.sampled_from(PATHS))
        if kind == "value":
            _set(ev, path, draw(st.sampled_from(ODD_VALUES)))
        elif kind == "delete":
            _set(ev, path, None, delete=True)
        elif kind == "extra":
            ev[draw(st.sampled_from(("extra", "Extra", "x-y", "comexampleext")))] = draw(st.sampled_from(ODD_VALUES))
        elif kind == "data-extra":
            ev["data"]["unexpected"] = 1
        else:
            ev = dict(reversed(list(ev.items())))
    line = line_of(ev)
    if draw(st.booleans()):
        return _text_change(line, draw(st.sampled_from(TEXT_CHANGES)), draw(st.integers(0, 10**6)))
    return line.encode("utf-8")


#: what a test compares of each fast-path event (``_agrees``' order)
EV_COLUMNS = ("line", "source", "id", "time_us", "digest", "body", "inst_ref", "vendor", "sw_id", "sw_name", "sw_version",
              "site_id", "site_size", "site_name", "wave", "category", "kind", "doc_type")


def _fast_events_read(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[Any, ...]]:
    """The fast path's events (``ev``) by line, as ``EV_COLUMNS``."""
    return {r[0]: r for r in con.execute(f"SELECT {', '.join(EV_COLUMNS)} FROM ev").fetchall()}


def _classify(lines: list[bytes]) -> tuple[dict[int, tuple[Any, ...]], set[int], set[int]]:
    """(fast-path events by line, lines left to the reference parser, lines apart as not UTF-8)."""
    data = b"".join(x + b"\n" for x in lines)
    ends = np.cumsum([len(x) + 1 for x in lines], dtype=np.int64)
    con = duckdb.connect()
    try:
        apart = register_lines(con, Batch(1, data, ends), np.array([1], dtype=np.int64))
        parse_lines(con)
        _, rest = fast_events(con)
        fast = _fast_events_read(con)
    finally:
        con.close()
    return fast, {line for line, _ in rest}, {line for line, _ in apart}


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _agrees(number: int, raw: bytes, row: tuple[Any, ...]) -> None:
    expected = parse_event(raw)
    assert isinstance(expected, Event), f"line {number} on the fast path, the reference refuses it: {expected} {raw!r}"
    d = expected.data
    want = (number, expected.source, expected.id, expected.time_us, expected.digest, expected.raw, d["installation_id"],
            d["vendor_id"], d["software"]["id"], d["software"]["name"], d["software"]["version"], d["site"]["id"],
            d["site"]["size"], d["site"]["name"], d["wave"], d["category"], d["kind"], d["document_type"])
    assert row == want, f"line {number} read differently on the fast path: {raw!r}"
    # and nothing in the data beyond what the fast path reads (which it would lose)
    assert set(d) <= {"installation_id", "vendor_id", "software", "site", "wave", "category", "kind", "document_type",
                      "bytes", "sha256", "reference"}, raw


@settings(derandomize=True, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edge_lines(), min_size=1, max_size=40))
def test_the_fast_path_accepts_only_what_the_reference_parser_reads_the_same(lines: list[bytes]) -> None:
    fast, rest, apart = _classify(lines)
    numbers = set(range(1, len(lines) + 1))
    assert not (set(fast) & rest) and not (set(fast) & apart), "a line on two paths"
    assert set(fast) | rest | apart == numbers, "a line on no path"
    for number in apart:
        raw = lines[number - 1]
        assert not _is_utf8(raw), f"line {number} set apart, but it is UTF-8: {raw!r}"
    for number, row in fast.items():
        _agrees(number, lines[number - 1], row)


def test_the_infrastructures_own_lines_take_the_fast_path() -> None:
    """Not vacuous: the lines the infrastructure writes are all decided on the fast path, with the reference's
    outcome."""
    lines = [line_of(ev).encode("utf-8") for ev in BASE]
    fast, rest, apart = _classify(lines)
    assert sorted(fast) == list(range(1, len(lines) + 1)) and not rest and not apart
    for number, row in fast.items():
        _agrees(number, lines[number - 1], row)


# ---------------------------------------------------------------------------------------------- Parquet rows
#: the layout's string members (every member but data.bytes), for values of any text
STRING_PATHS = [p for p in PATHS if p != ("data", "bytes")]
ODD_TEXT = st.one_of(st.sampled_from([v for v in ODD_VALUES if isinstance(v, str)] + ["null", 'a"b', "a\\b", "\x00"]),
                     st.text(max_size=20))


def _without_nulls(value: Any) -> Any:
    """A row's event: the JSON object of its non-null attributes (a null is an absent attribute)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


@st.composite
def edge_rows(draw: st.DrawFn) -> dict[str, Any]:
    ev = json.loads(json.dumps(draw(st.sampled_from(BASE))))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(("text", "null", "bytes", "no-data")))
        if kind == "text":
            _set(ev, draw(st.sampled_from(STRING_PATHS)), draw(ODD_TEXT))
        elif kind == "null":
            _set(ev, draw(st.sampled_from(PATHS)), None)
        elif kind == "bytes":
            _set(ev, ("data", "bytes"), draw(st.integers(-(2**63), 2**63 - 1)))
        else:
            ev["data"] = None
    return ev


def _classify_rows(rows: list[dict[str, Any]]) -> tuple[dict[int, tuple[Any, ...]], dict[int, str], dict[int, str]]:
    """(fast-path events by line, lines left to the reference parser with their JSON, every row's JSON line)."""
    import pyarrow as pa

    from conformity.payments import parquet

    table = pa.Table.from_pylist(rows, schema=parquet.LAYOUT)
    table = table.add_column(0, "line", pa.array(range(1, len(rows) + 1), pa.int64())).add_column(
        1, "span", pa.array([0] * len(rows), pa.int64()))
    con = duckdb.connect()
    try:
        con.register("batch_rows", table)
        materialise(con, "px", parquet.ROWS_PARSED)
        raws = dict(con.execute("SELECT line, raw FROM px").fetchall())
        _, rest = fast_events(con)
        fast = _fast_events_read(con)
    finally:
        con.close()
    return fast, dict(rest), raws


@settings(derandomize=True, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edge_rows(), min_size=1, max_size=40))
def test_a_parquet_row_is_judged_as_the_json_line_of_its_non_null_attributes(rows: list[dict[str, Any]]) -> None:
    """Each row's line is the JSON object of its non-null attributes (same values, nothing lost or added); a row on
    the fast path is one the reference parser reads the same from that line; the others go to it with that line."""
    fast, rest, raws = _classify_rows(rows)
    numbers = set(range(1, len(rows) + 1))
    assert not (set(fast) & set(rest)) and set(fast) | set(rest) == numbers, "a row on two paths, or on none"
    for number, row in enumerate(rows, start=1):
        line = raws[number]
        assert line.endswith("\n") and json.loads(line) == _without_nulls(row), f"row {number} changed: {line!r}"
        if number in rest:
            assert rest[number] == line
        else:
            _agrees(number, line[:-1].encode("utf-8"), fast[number])


def test_rows_without_nulls_take_the_fast_path() -> None:
    """Not vacuous: the infrastructure's events as rows are all decided on the fast path, with the reference's outcome."""
    fast, rest, raws = _classify_rows([json.loads(json.dumps(ev)) for ev in BASE])
    assert sorted(fast) == list(range(1, len(BASE) + 1)) and not rest
    for number, row in fast.items():
        _agrees(number, raws[number][:-1].encode("utf-8"), row)
