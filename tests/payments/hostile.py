"""One events file of lines that parse differently between engines, or between a fast path and the reference parser
(``intake.parse_event``): members twice, escapes, Unicode spellings, numbers, times, a BOM, CR LF, NUL bytes, lines
at the length bound. The reference parser's meaning is the truth; every engine must give its outputs."""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path

from conformity.payments.intake import MAX_LINE_BYTES
from conformity.segments import write_sealed
from tests.payments.builders import INFRA, SEGMENT_LINES, T0, event, installation, line_of, modified
from tests.payments.workspace import Workspace

DAY = dt.timedelta(days=1)
E = installation("750100021", "M")
F = installation("750100022", "S", site_name="Cr\u00e8che \u00c9toile")


def _raw(ev: dict[str, object]) -> bytes:
    return line_of(ev).encode("utf-8")


def hostile_lines() -> list[bytes]:
    """The lines, each a hole in some parser; E and F qualify on the ordinary lines alone."""
    ordinary = [event(E, T0 + i * DAY, i) for i in range(4)] + [event(F, T0 + i * DAY, 100 + i) for i in range(4)]
    lines = [b"\xef\xbb\xbf" + _raw(ordinary[0]), *map(_raw, ordinary[1:])]  # a BOM at the file's start
    base = event(E, T0 + 5 * DAY, 10)
    text = line_of(base)
    lines.append(text.replace('{"specversion"', '{"id":"evt-first","specversion"', 1).encode())  # a member twice (first wins?)
    lines.append(text.replace('"bytes":1010', '"bytes":1010,"bytes":1', 1).encode())  # a data member twice
    lines.append(line_of(ordinary[1]).replace('"id":"evt-', '"id":"\\u0065vt-', 1).encode())  # same id, escaped
    lines.append(line_of(modified(ordinary[2], data__reference="other")).replace('"id":"evt-', '"id":"ev\\u0074-', 1)
                 .encode())  # an escaped id, other content: conflicting
    for n, form in ((11, "NFC"), (12, "NFD")):  # ids that differ only by their Unicode spelling
        lines.append(_raw(modified(event(E, T0 + 6 * DAY, n), id=unicodedata.normalize(form, "evt-\u00e9t\u00e9"))))
    lines.append(_raw(modified(event(F, T0 + 6 * DAY, 113), data__site__name=unicodedata.normalize("NFD", F["site"]["name"]))))
    lines.append(_raw(modified(event(E, T0 + 6 * DAY, 14), data__site__id="75010002\u0661")))  # an Arabic-Indic digit
    for n, number in enumerate(("9223372036854775807", "9223372036854775808", "100000000000000000000000000000",
                                "-0", "1.0", "1e3", "1E400", "-9223372036854775809", "0.0", "01", "1000.5"), 20):
        lines.append(text.replace('"bytes":1010', f'"bytes":{number}', 1).replace("-10", f"-{n}").encode())
    for n, when in enumerate(("2026-06-20T10:00:00+02:00", "2026-06-20T10:00:00.123456Z", "2026-06-20T10:00:00.123456789Z",
                              "2026-06-20T23:59:60Z", "1969-12-31T23:59:59Z", "0999-06-20T10:00:00Z",
                              "10000-06-20T10:00:00Z", "2026-06-20t10:00:00z", "2026-02-29T10:00:00Z",
                              "2026-06-20T10:00:00.000Z", "2026-06-20T10:00:00.5Z", "2026-06-20 10:00:00Z",
                              "2026-06-20T10:00:00-00:00", "9999-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z",
                              "1969-12-31T23:59:59.999Z", "1582-10-10T00:00:00Z", "1000-01-01T00:00:00.001Z",
                              "2026-06-20T10:00:00.1234Z"), 40):
        lines.append(_raw(modified(event(E, T0 + 7 * DAY, n), time=when)))
    lines.append(b"\x00")  # a NUL line: what the Spark copy puts for a line too long
    lines.append(text.replace('"reference":"doc', '"reference":"d\x00oc', 1).replace("-10", "-60").encode())  # raw NUL
    lines.append(text.replace('"reference":"doc', '"reference":"d\\u0000oc', 1).replace("-10", "-61").encode())
    lines.append(text.replace('"id":"evt-', '"id":"evt-\\ud800', 1).replace("-10", "-62").encode())  # lone surrogate
    lines.append(_raw(modified(event(E, T0 + 8 * DAY, 63), data__document_type=None)))  # explicit null
    lines.append(text.replace('"bytes":1010', '"bytes":"1010"', 1).replace("-10", "-64").encode())
    lines.append(b"[" * 100_000 + b"]" * 100_000)  # deep nesting
    lines.append(b'{"a":' * 50_000 + b"1" + b"}" * 50_000)
    for n, size in ((70, MAX_LINE_BYTES - 1), (71, MAX_LINE_BYTES), (72, MAX_LINE_BYTES + 1)):  # at the line bound
        short = _raw(modified(event(E, T0 + 9 * DAY, n), data__site__name=""))
        lines.append(short.replace(b'"name":""', b'"name":"' + b"x" * (size - len(short)) + b'"', 1))
    lines.append(b" " * (MAX_LINE_BYTES + 5))  # blank, long
    lines.append(_raw(event(E, T0 + 9 * DAY, 80)) + b"\r")  # CR LF
    lines.append(_raw(event(E, T0 + 9 * DAY, 81)) + b"\r\r")
    lines.append(_raw(event(E, T0 + 9 * DAY, 82)).replace(b",", b", ", 1))
    lines.append(_raw(event(E, T0 + 9 * DAY, 83)) + b"\x0c")  # a form feed after the object
    lines.append(b"\x0b" + _raw(event(E, T0 + 9 * DAY, 84)))
    lines.append(_raw(event(E, T0 + 9 * DAY, 85)).replace(b"evt-", b"evt-\xc2\x85", 1))  # NEL inside the id
    lines.append(_raw(event(E, T0 + 9 * DAY, 86)).replace(b"evt-", b"evt-\xe2\x80\xa8", 1))  # U+2028 inside the id
    lines.append(_raw(event(E, T0 + 9 * DAY, 87)).replace(b"evt-", b"evt-\xef\xbf\xbe", 1))  # a noncharacter
    lines.append(_raw(event(E, T0 + 9 * DAY, 88)).replace(b"evt-", b"evt-\xf0\x9f\x92\xb6", 1))  # outside the BMP
    lines.append(_raw(event(E, T0 + 9 * DAY, 89)).replace(b"evt-", b"evt-\xed\xa0\x80", 1))  # a surrogate in UTF-8
    lines.append(_raw(event(E, T0 + 9 * DAY, 90)).replace(b"evt-", b"evt-\xc0\xaf", 1))  # an overlong "/"
    lines.append(_raw(modified(event(F, T0 + 9 * DAY, 191), data__site__name="\U0001f3e5 \u00e9")))
    lines.append(_raw(event(E, T0 + 9 * DAY, 92)).replace(b'"id":"evt-', b'"id":"evt/-', 1))
    return lines


def hostile_files(ws: Workspace) -> tuple[Path, Path]:
    """The hostile file, and a file of ordinary lines named as a compressed file (``.gz``) that it is not, with
    characters of glob patterns, a colon and a backslash in its name, as long as a sealed file's name can be."""
    G = installation("750100023", "L")
    hostile = write_sealed(ws.root / "events" / "hostile.jsonl", hostile_lines(), INFRA, every=SEGMENT_LINES)
    name = "plain[1]{a,b}:\\x" + "y" * 221 + ".jsonl.gz"  # 246 bytes: its sidecar's name has 255
    named = write_sealed(ws.root / "events" / name, [_raw(event(G, T0 + i * DAY, 300 + i)) for i in range(6)], INFRA,
                         every=SEGMENT_LINES)
    return hostile, named
