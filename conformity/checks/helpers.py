"""Small helpers that checks share to read a trace: driver outputs, findings quoting exchanges."""

from __future__ import annotations

import re
from typing import Any

from conformity.checks.model import Finding, MissingEvidence
from conformity.checks.trace import Exchange, Note, TraceView


def performed(trace: TraceView, action: str, name: str | None = None) -> list[Note]:
    """The driver.perform notes of an action (optionally of one named step), in order."""
    notes = trace.performed(action)
    return [n for n in notes if name is None or n.data.get("name") == name]


def output_of(trace: TraceView, action: str, name: str | None = None) -> dict[str, Any]:
    """The driver's output of the (last) step performing ``action``; MissingEvidence explains why not.

    A missing output fails the check with a finding quoting the driver's failure, an unsupported
    action, or an output that did not match the action's schema.
    """
    notes = performed(trace, action, name)
    if not notes:
        failure = trace.notes("driver.failure")
        if failure:
            raise MissingEvidence(Finding(f"the driver failed before {action}: {failure[-1].data.get('message', '')}",
                                          exchange=failure[-1].seq, got=failure[-1].data, scenario=trace.scenario))
        raise MissingEvidence(Finding(f"the scenario never performed {action}"))
    note = notes[-1]
    data = note.data
    if data.get("unsupported"):
        raise MissingEvidence(Finding(f"the software does not support action {action}", exchange=note.seq,
                                      scenario=note.scenario))
    if "failure" in data:
        raise MissingEvidence(Finding(f"the driver failed on {action}: {data['failure'].get('message', '')}",
                                      exchange=note.seq, got=data["failure"], scenario=note.scenario))
    if data.get("output_invalid"):
        raise MissingEvidence(Finding(f"the output of {action} does not match its schema", exchange=note.seq,
                                      got=data["output_invalid"], scenario=note.scenario))
    output: dict[str, Any] = data["output"]
    return output


def quote(exchange: Exchange, message: str, *, where: str = "", expected: Any = None, got: Any = None) -> Finding:
    """A finding about one recorded exchange (naming its scenario when the check reads every scenario)."""
    return Finding(message, exchange=exchange.seq, where=where, expected=expected, got=got, scenario=exchange.scenario)


def noted(note: Note, message: str, *, where: str = "", expected: Any = None, got: Any = None) -> Finding:
    """A finding about one harness note (a driver step and its output)."""
    return Finding(message, exchange=note.seq, where=where, expected=expected, got=got, scenario=note.scenario)


def step_exchanges(trace: TraceView, note: Note, service: str | None = None) -> list[Exchange]:
    """The exchanges a ``driver.perform`` step caused: those before its note, after the previous note."""
    previous = trace.note_before(note.seq)
    return trace.exchanges(service, after=previous.seq if previous else 0, before=note.seq)


def as_token(value: str, text: str) -> bool:
    """Whether ``value`` is in ``text`` as a whole: not inside a longer run of letters and digits. Personal data is
    there where it is a value (``?name=NOEL``, ``/patients/NOEL``), not where a few letters of a random ``state``, token
    or identifier happen to spell it (``…RskRNOELF4B…``: a reference run failed a URL check so, one in many)."""
    start = text.find(value)
    while start >= 0:
        end = start + len(value)
        if not (start and text[start - 1].isalnum()) and not (end < len(text) and text[end].isalnum()):
            return True
        start = text.find(value, start + 1)
    return False


#: what continues a product name, a version or a registration id (``1.0.0`` is not the version of ``1.0.0.1``,
#: ``1.0.0-beta`` nor ``11.0.0``)
_PRODUCT_WORD = "A-Za-z0-9._+-"


def names_whole(value: str, agent: str) -> bool:
    """Whether a User-Agent (or any product text) names ``value`` whole: not inside a longer name, version or id
    (``AppPro``, ``11.0.0``, ``1.0.0.4711``, ``REG-0001`` + ``2`` do not name ``App`` 1.0.0 ``REG-0001``)."""
    return re.search(rf"(?<![{_PRODUCT_WORD}]){re.escape(value)}(?![{_PRODUCT_WORD}])", agent) is not None
