"""Checks: what the software hands back (SECURITY-008): no secret the sandbox issued, no patient data in its logs.

The sandbox knows every secret it issued to a session (its client secret, the tokens and codes of its
store, the ID tokens it signed) and redacts each one, as ``[redacted sha256:…]``, wherever it appears in
a harness note: the driver's answers and failures, and ``software.output`` (the driver's error output and
what the software appended to the log files its vendor declares). The trace holds the hash prefix of
every token the provider issued and of the client secret, so a redacted secret found there is one the
software handed back. Patient data (INS, birth names and first names) and document content (the texts the
harness gave the software to submit as documents) are looked for in the error output and the logs only: answers
to the operator legitimately show them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import noted
from conformity.checks.model import Finding, Verdict, failed, not_exercised, passed
from conformity.checks.oidc import REDACTED
from conformity.checks.registry import check
from conformity.checks.trace import Note, RunView, TraceView
from conformity.packs.health.checks.pracauth import NOMINAL
from conformity.packs.health.checks.security import personal_values, token_kinds
from conformity.packs.health.ins import normalise_name

#: kind of note → the members the software wrote (never the harness's own input)
HANDED_BACK = {"driver.perform": ("output", "failure"), "shrink.attempt": ("output", "failure"),
               "driver.initialize": ("result",), "driver.failure": ("message", "raw", "stderr_tail", "error"),
               "software.output": ("stderr", "logs")}
KINDS = {"access": "access token", "id": "ID token", "refresh": "refresh token", "client": "client secret"}
#: actions whose input carries a document's content (its ``body``)
DOCUMENT_ACTIONS = ("document.submit", "document.replace")
#: the shortest line of a document's text searched for (the harness's texts are random mixes of scripts, symbols and
#: markup: a line that long is no ordinary phrase), and how much of a longer line
CONTENT_MIN, CONTENT_SPAN = 12, 48


def secrets_of(trace: TraceView) -> dict[str, str]:
    """Hash prefix → what it is, for every secret the sandbox issued in this session that the trace knows."""
    found = {h: KINDS[kind] for h, kind in token_kinds(trace).items()}
    if trace.session.get("client_secret_sha256"):
        found[str(trace.session["client_secret_sha256"])] = KINDS["client"]
    return found


def handed_back(note: Note) -> Iterator[tuple[str, Any]]:
    """(where, value) of what the software wrote in a note."""
    for member in HANDED_BACK.get(note.kind, ()):
        value = note.data.get(member)
        if isinstance(value, dict) and member == "logs":
            yield from ((f"log file {path}", text) for path, text in value.items())
        elif value not in (None, "", [], {}):
            yield (member if note.kind != "driver.perform" else f"answer to step {note.data.get('name')!r}"), value


def where_of(note: Note, label: str) -> str:
    return f"{note.kind} {label}"


def secret_findings(trace: TraceView, issued: dict[str, str]) -> tuple[list[Finding], int]:
    """Every issued secret found in what the software handed back; how many places were searched."""
    findings, places = [], 0
    for note in trace.notes():
        for label, value in handed_back(note):
            places += 1
            text = json.dumps(value, ensure_ascii=False)
            for h in sorted(set(REDACTED.findall(text)) & set(issued)):
                findings.append(noted(note, f"the software wrote the {issued[h]} the sandbox issued in its {label}",
                                      where=where_of(note, label), expected="no secret", got=f"sha256:{h}"))
    return findings, places


def patient_values(trace: TraceView) -> dict[str, str]:
    """INS and names of the session's patients (those long enough to be told from ordinary words)."""
    return {value: what for value, what in trace.derived(personal_values).items()
            if what == "an INS" or (what.startswith("a patient's") and "birth_date" not in what and len(value) >= 6)}


def personal_findings(trace: TraceView, patients: dict[str, str]) -> list[Finding]:
    """Patient data (``patients``: value → what it is) in the software's error output or logs."""
    findings = []
    for note in trace.notes("software.output"):
        for label, value in handed_back(note):
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            folded = normalise_name(text)
            hits = sorted({what for v, what in patients.items() if v in text or v in folded})
            if hits:
                findings.append(noted(note, f"the software wrote patient data ({', '.join(hits)}) in its {label}",
                                      where=where_of(note, label), expected="no patient data", got=hits))
    return findings


def written_forms(span: str) -> set[str]:
    """``span`` as a log may hold it: as given, JSON-escaped (to ASCII or not), XML-escaped, or as a Python repr."""
    return {span, json.dumps(span)[1:-1], json.dumps(span, ensure_ascii=False)[1:-1], xml_escape(span), repr(span)[1:-1]}


def document_spans(run: RunView) -> dict[str, str]:
    """Span of text → the step that gave it: the lines of the document contents the harness gave the software to
    submit (every scenario), each in every form a log may hold it."""
    spans: dict[str, str] = {}
    for trace in run:
        for note in trace.notes("driver.perform"):
            body = (note.data.get("input") or {}).get("body") if note.data.get("action") in DOCUMENT_ACTIONS else None
            if not isinstance(body, str):
                continue
            label = f"step {note.data.get('name')!r} of {note.scenario}"
            for line in body.splitlines():
                line = line.strip()
                if len(line) >= CONTENT_MIN:
                    for form in written_forms(line[:CONTENT_SPAN]):
                        spans.setdefault(form, label)
    return spans


def content_findings(trace: TraceView, spans: dict[str, str]) -> list[Finding]:
    """Document content (a text the software was given to submit) in the software's error output or logs."""
    findings = []
    for note in trace.notes("software.output"):
        for label, value in handed_back(note):
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            hits = sorted({given for span, given in spans.items() if span in text})
            if hits:
                findings.append(noted(note, f"the software wrote document content (the text of the document of "
                                            f"{', '.join(hits)}) in its {label}", where=where_of(note, label),
                                      expected="no document content", got=hits))
    return findings


@check("secrets.not_exposed", verifies=["SECURITY-008"], scenario=NOMINAL, reads_all=True)
def not_exposed(run: RunView, ctx: EvalContext) -> Verdict:
    """No secret the sandbox issued in what the software answers, writes on its error output or logs; no patient
    data or document content in its error output or logs."""
    findings: list[Finding] = []
    places = 0
    spans = document_spans(run)
    # what any session of the run issued or handled, searched in what the software wrote in every session: a log
    # buffer flushed, or a background task run, during another scenario writes that scenario's slice
    each = [secrets_of(trace) for trace in run]
    issued = {h: what for found in each for h, what in found.items()}
    secrets = sum(map(len, each))
    patients = {v: what for trace in run for v, what in patient_values(trace).items()}
    for trace in run:
        found, searched = secret_findings(trace, issued)
        findings += found + personal_findings(trace, patients) + content_findings(trace, spans)
        places += searched
    if not secrets or not any(True for _ in run.exchanges()):  # issued to a software that never asked for them
        return not_exercised(Finding("the sandbox issued no secret the trace knows in this run (no login), so where the "
                              "software writes secrets is not shown"))
    if findings:
        return failed(*findings)
    return passed(f"{secrets} secret(s) issued, none in {places} answer(s), error output(s) or log slice(s) of "
                  f"{len(run.traces)} scenario(s); no patient data, nor the text of any of the "
                  f"{len(set(spans.values()))} document(s) given to submit, in the error output and logs")
