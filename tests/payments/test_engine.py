"""The columnar engine's fast path is never looser than the reference parser: each line gets the same outcome.

Lines the infrastructure writes (compact, keys in its order) are validated in SQL; every other line goes
through ``intake.parse_event``. Here every line, on either path, is checked against ``parse_event``: the
same refusal reason and detail for a refused line, the same digest for an accepted one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformity.payments import reasons
from conformity.payments.intake import Event, Rejected, parse_event
from conformity.payments.store import recorded_events
from conformity.segments import write_sealed
from tests.payments.builders import INFRA, events_for, installation, line_of
from tests.payments.workspace import Workspace

SITE = installation("750100011", "M")
PARSE_REASONS = (reasons.MALFORMED, reasons.WRONG_ENVELOPE, reasons.INVALID_DATA)


def _variants() -> list[str]:
    """Lines of one installation: compact, reformatted, and each subtly wrong (one change each)."""
    base = events_for(SITE, 60)
    out: list[str] = []

    def put(k: int, change: Any, raw: bool = False) -> None:
        ev = json.loads(json.dumps(base[k]))
        if raw:
            out.append(change(line_of(ev)))
            return
        change(ev)
        out.append(line_of(ev))

    def setd(path: str, value: Any) -> Any:
        def f(ev: dict[str, Any]) -> None:
            *parents, last = path.split(".")
            node = ev
            for p in parents:
                node = node[p]
            node[last] = value
        return f

    out += [line_of(e) for e in base[:20]]  # the infrastructure's own lines: fast path
    out.append(json.dumps(base[20]))  # spaces after separators: reference path, same event
    out.append(json.dumps(base[21], sort_keys=True, separators=(",", ":")))  # another key order
    out.append(json.dumps(base[22], ensure_ascii=True).replace("a", "\\u0061", 1))  # an escape
    put(23, setd("data.bytes", 1024.0))  # a float: valid for the schema (integer 1024.0), other digest
    put(24, setd("data.bytes", -1))
    put(25, setd("id", 25))
    put(26, setd("extra", "x"))  # an extension attribute: valid
    put(27, setd("Extra", "x"))  # not a valid extension attribute name
    put(28, setd("data.software.name", "Tab\there"))  # a control character, escaped: valid
    put(29, lambda line: line.replace("ACME-EHR", "ACME\tEHR"), raw=True)  # unescaped: not JSON
    put(30, setd("time", "2026-03-01T10:00:00.123456Z"))  # microseconds
    put(31, setd("time", "2026-02-30T10:00:00Z"))  # not a date
    put(32, setd("time", "2026-03-01T10:00:60Z"))  # a leap second
    put(33, setd("time", "2026-03-01t10:00:00z"))  # lower-case letters: valid RFC 3339
    put(34, setd("subject", "someone-else"))
    put(35, setd("datacontenttype", "application/json; charset=utf-8"))
    put(36, setd("dataschema", "relative/path"))
    put(37, setd("data.site.size", "m"))
    put(38, setd("data.document_type", None))
    put(39, setd("data.document_type", "34106"))
    put(40, setd("data.sha256", "A" * 64))
    put(41, setd("data.reference", ""))
    put(42, setd("data.vendor_id", "v" * 101))
    put(43, setd("data.site.name", "Hôpital Saint-Éloi"))  # not ASCII: valid, fast path
    put(44, setd("data.kind", "fax"))
    put(45, setd("specversion", "1.1"))
    put(46, setd("source", "urn:usine:sandbox:dmp "))
    put(47, lambda line: line[:-1] + ',"id":"other"}', raw=True)  # a repeated key: malformed
    put(48, lambda line: line + "  ", raw=True)  # trailing spaces
    put(49, setd("data.bytes", 10**30))  # beyond 64 bits: valid for the schema
    put(50, setd("data.software.version", "é" * 30))  # 30 characters, 60 bytes: valid (maxLength 50)
    put(51, setd("data.wave", "2026-W1\n"))
    put(52, setd("data.installation_id", None))
    put(53, setd("time", "0999-03-01T10:00:00Z"))
    put(54, setd("data.site.name", "Site\u2028\u2029 \x7f"))  # characters JSON writers may escape differently
    put(55, setd("data.software.name", 'Soft "quoted" \\ back/slash'))  # escapes in the line: the reference path
    put(56, setd("data.kind", "dpe"))  # another pack's kind
    out.append("[1, 2]")
    out.append("")  # a blank line: not an event
    out.append('{"specversion": "1.0", "id": ')
    return out


def test_every_line_gets_the_reference_parsers_outcome(ws: Workspace, tmp_path: Path) -> None:
    ws.label()
    lines = _variants()
    f = ws.events("variants.jsonl", lines)
    r = ws.run(f)
    assert r.returncode == 0, r.stderr
    refused = {x["line"]: x for x in r.refusals if x["kind"] == "event"}
    recorded = {(e[0], e[1]): e for e in recorded_events(ws.ledger)}
    accepted = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            assert number not in refused
            continue
        expected = parse_event(line.encode("utf-8"))
        got = refused.get(number)
        if isinstance(expected, Rejected):
            assert got is not None, f"line {number} accepted, the reference refuses it: {expected}"
            assert (got["reason"], got["detail"]) == (expected.reason, expected.detail), f"line {number}"
        else:
            assert isinstance(expected, Event)
            if expected.data["kind"] not in ("document", "message"):  # valid for the schema, not the health pack's
                assert got is not None and got["reason"] == "invalid-data", f"line {number}: {got}"
                assert "is not a data kind of the wave's pack" in got["detail"], f"line {number}: {got}"
                continue
            assert got is None or got["reason"] not in PARSE_REASONS, f"line {number}: {got}"
            if (expected.source, expected.id) in recorded and got is None:
                assert recorded[(expected.source, expected.id)][2] == expected.digest, f"line {number}: digest"
                accepted += 1
    assert accepted >= 20



def test_a_line_that_is_not_utf8_is_one_refused_line_not_also_a_blank_one(ws: Workspace) -> None:
    """Counted once: the run's lines are the file's non-blank lines, whatever their encoding (it was one short)."""
    ws.label()
    good = events_for(SITE, 2)
    broken = line_of(good[1]).encode("utf-8").replace(b"ACME", b"AC\xffME", 1)
    f = write_sealed(ws.root / "events" / "mixed.jsonl", [line_of(good[0]).encode("utf-8"), broken, b""], INFRA)
    stats = ws.run_inproc(f)
    assert (stats.lines, stats.counted) == (2, 1), stats
    r = ws.run(f)  # again, on the same ledger: line 1 is now a duplicate, line 2 still refused once, on its bytes
    refused = [(x["line"], x["reason"]) for x in r.refusals if x["kind"] == "event"]
    assert sorted(refused) == [(1, reasons.DUPLICATE_EVENT), (2, reasons.MALFORMED)], r.stderr
    assert (r.summary["lines"], r.summary["events_refused"]) == (2, 2), r.summary
