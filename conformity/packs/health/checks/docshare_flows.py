"""Checks: what the software does over several steps with the shared record (DOCSHARE-005, -020..-024,
-031, ETHICS-002) — resubmission, retries, replacement, deletion, refusals, unqualified identities and
documents hidden by the patient.

The evidence is the sequence the shared record recorded for each step (requests, answers, problem
codes, its final listing) and the driver's answer to the step, checked against that sequence.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import re
from typing import Any

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import quote, step_exchanges
from conformity.checks.model import Finding, Missing, Verdict, failed, judged, not_exercised
from conformity.checks.registry import check
from conformity.checks.trace import Exchange, Note, RunView, TraceView, views
from conformity.packs.health.checks.cda import V2_CONTENT, verdict
from conformity.packs.health.checks.evidence import (
    Submitted,
    final_list,
    first,
    identity_for,
    ins_ids,
    output,
    practitioner_at,
    problem_code,
    recipients,
    served_documents,
    started,
    step_label,
    step_named,
    step_submissions,
    when,
)

LIFECYCLE = "docshare.lifecycle"
RETRY, RETRY_GIVE_UP = "docshare.retry", "docshare.retry_give_up"
RETRY_REFUSED, RETRY_NETWORK = "docshare.retry_refused", "docshare.retry_network"
UNQUALIFIED = "docshare.unqualified"


# ---------------------------------------------------------------------------------------------
# DOCSHARE-020, -022, -023: lifecycle


def not_accepted(trace: TraceView, step: str, then: str) -> Verdict | None:
    """A failing verdict when step ``step`` got no document accepted, which ``then`` needed."""
    note = step_named(trace, step)
    if note is not None and any(s.accepted for s in step_submissions(trace, note)):
        return None
    return not_exercised(Finding(f"step {step!r}: the shared record accepted no document, so {then} could not be verified",
                          exchange=note.seq if note else None, scenario=note.scenario if note else "", got=output(note) if note else None))


@check("docshare.resubmit_no_duplicate", verifies=["DOCSHARE-020"], scenario=LIFECYCLE)
def resubmit_no_duplicate(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Submitting an accepted document again (same uniqueId) leaves one copy and is reported accepted."""
    note, original = step_named(trace, "resubmit"), step_named(trace, "original")
    if note is None or original is None:
        return not_exercised(Finding("the scenario never asked to resubmit a document"))
    first_subs = [s for s in step_submissions(trace, original) if s.accepted]
    if not first_subs:
        return not_exercised(Finding(f"{step_label(original)}: the shared record did not accept the original document, so "
                              "its resubmission could not be verified",
                              exchange=original.seq, scenario=original.scenario, got=output(original)))
    uid, title = first_subs[-1].unique_id, first_subs[-1].metadata.get("title")
    findings = []
    for s in step_submissions(trace, note):
        if s.unique_id != uid:
            findings.append(quote(s.exchange, f"{s.label()}: the resubmission carries a new uniqueId: the record "
                                  "now holds a second copy" if s.accepted else f"{s.label()}: new uniqueId",
                                  where="metadata.unique_id", expected=uid, got=s.unique_id))
        elif problem_code(s.exchange) == "unique-id-conflict":
            findings.append(quote(s.exchange, f"{s.label()}: the resubmission is another document under the same "
                                  "uniqueId (refused by the record)", where="metadata.hash",
                                  expected=first_subs[-1].metadata.get("hash"), got=s.metadata.get("hash")))
    status = output(note).get("status")
    if status != "accepted":
        findings.append(Finding(f"{step_label(note)}: the resubmission is not reported accepted", exchange=note.seq, scenario=note.scenario,
                                where="output.status", expected="accepted", got=status))
    copies = [d.get("unique_id") for d in served_documents(final_list(trace)) if d.get("metadata", {}).get("title") == title]
    if len(copies) > 1:
        findings.append(Finding(f"the shared record lists {len(copies)} documents with the original's title",
                                where="documents", expected=1, got=copies))
    return verdict(findings, 1, "resubmission")


def rplc_parent(s: Submitted) -> str | None:
    """The id (root^extension) of relatedDocument[@typeCode='RPLC']/parentDocument/id in the document."""
    root = s.root
    el = first(root, "v3:relatedDocument[@typeCode='RPLC']/v3:parentDocument/v3:id") if root is not None else None
    if el is None:
        return None
    return str(el.get("root", "")) + (f"^{el.get('extension')}" if el.get("extension") else "")


@check("docshare.replace_links_previous", verifies=["DOCSHARE-022"], scenario=LIFECYCLE)
def replace_links_previous(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A correction is a new uniqueId replacing (RPLC) the old one: new approved, old deprecated."""
    note = step_named(trace, "replacement")
    if note is None:
        return not_exercised(Finding("the scenario never asked to replace a document"))
    blocked = not_accepted(trace, "original", "its replacement")
    if blocked is not None:
        return blocked
    old = str(note.data.get("input", {}).get("document_id", ""))
    subs = step_submissions(trace, note)
    linked = [s for s in subs if s.replaces == old]
    if not linked:
        sent = [f"{s.exchange.method} {s.exchange.local_path}" for s in subs]
        return failed(Finding(f"{step_label(note)}: no replacement of {old} was submitted to the shared record",
                              exchange=note.seq, scenario=note.scenario,
                              expected=f"POST /documents/{old}/replace", got=sent or output(note)))
    s = linked[-1]
    findings = []
    if not s.accepted:
        findings.append(quote(s.exchange, f"{s.label()}: the shared record refused the replacement", where="response",
                              got=[f.get("code") for f in s.sandbox_findings()] or problem_code(s.exchange)))
    if s.unique_id == old:
        findings.append(quote(s.exchange, f"{s.label()}: the new version reuses the old uniqueId",
                              where="metadata.unique_id", expected="a new uniqueId", got=s.unique_id))
    if rplc_parent(s) != old:
        findings.append(quote(s.exchange, f"{s.label()}: the document does not name the version it replaces",
                              where="/ClinicalDocument/relatedDocument[@typeCode='RPLC']/parentDocument/id",
                              expected=old, got=rplc_parent(s)))
    body = s.exchange.response_json if s.accepted else {}
    if s.accepted and (body.get("replaces") != old or body.get("status") != "approved"):
        findings.append(quote(s.exchange, f"{s.label()}: the record does not hold the new version as approved "
                              "replacing the old", where="response", expected={"replaces": old, "status": "approved"},
                              got={k: body.get(k) for k in ("replaces", "status")}))
    previous = next((d for d in served_documents(final_list(trace)) if d.get("unique_id") == old), None)
    if s.accepted and previous is not None and previous.get("status") != "deprecated":
        findings.append(Finding(f"the record lists the replaced document {old} as {previous.get('status')}",
                                where="documents[].status", expected="deprecated", got=previous.get("status")))
    if output(note).get("status") != "accepted" and s.accepted:
        findings.append(Finding(f"{step_label(note)}: the accepted replacement is not reported accepted",
                                exchange=note.seq, scenario=note.scenario, where="output.status", expected="accepted",
                                got=output(note).get("status")))
    return verdict(findings, 1, "replacement")


@check("docshare.delete_effective", verifies=["DOCSHARE-023"], scenario=LIFECYCLE)
def delete_effective(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Deleting sends a delete naming the document, which the record then no longer lists."""
    note = step_named(trace, "delete")
    if note is None:
        return not_exercised(Finding("the scenario never asked to delete a document"))
    blocked = not_accepted(trace, "replacement", "the deletion of that replacement")
    if blocked is not None:
        return blocked
    target = str(note.data.get("input", {}).get("document_id", ""))
    deletes = [e for e in step_exchanges(trace, note, "dmp") if e.method == "DELETE"]
    named = [e for e in deletes if e.local_path == f"/documents/{target}"]
    if not named:
        return failed(Finding(f"{step_label(note)}: no delete request for {target} reached the shared record",
                              exchange=note.seq, scenario=note.scenario, expected=f"DELETE /documents/{target}",
                              got=[e.local_path for e in deletes] or output(note)))
    e = named[-1]
    findings = []
    if e.status != 200:
        findings.append(quote(e, f"{step_label(note)}: the shared record refused the deletion", where="response",
                              expected=200, got=problem_code(e)))
    if output(note).get("status") != ("deleted" if e.status == 200 else output(note).get("status")):
        findings.append(Finding(f"{step_label(note)}: the deletion is not reported deleted", exchange=note.seq, scenario=note.scenario,
                                where="output.status", expected="deleted", got=output(note).get("status")))
    still = [d.get("unique_id") for d in served_documents(final_list(trace)) if d.get("unique_id") == target]
    if still:
        findings.append(Finding(f"the shared record still lists {target} after its deletion", where="documents",
                                expected="absent", got=still))
    return verdict(findings, 1, "deletion")


# ---------------------------------------------------------------------------------------------
# DOCSHARE-024 (and MESSAGING-008): refusals reported


def refusal_findings(subject: TraceView | RunView, service: str, actions: tuple[str, ...], success: tuple[str, ...],
                     name_recipients: bool = False) -> tuple[list[Finding], int]:
    """Steps (of every scenario of a RunView) whose last request to ``service`` was refused: never reported as
    success, the code given."""
    findings, refused = [], 0
    for trace, note in ((t, n) for t in views(subject) for n in t.performed()):
        if note.data.get("action") not in actions:
            continue
        sent = [e for e in step_exchanges(trace, note, service) if e.method in ("POST", "PUT", "DELETE")]
        if not sent or sent[-1].status < 400:
            continue
        refused += 1
        last, out, code = sent[-1], output(note), problem_code(sent[-1])
        label = f"{step_label(note)}: the service answered {last.status} {code}"
        if out.get("status") in success or not out:
            findings.append(quote(last, f"{label}, yet the software reported {out.get('status') or 'no status'}",
                                  where="output.status", expected="refused or error", got=out.get("status")))
            continue
        if code and code not in str(out.get("error", "")):
            findings.append(quote(last, f"{label}; the software did not report the service's error code",
                                  where="output.error", expected=code, got=out.get("error")))
        if name_recipients:
            named = set(out.get("refused_recipients") or [])
            missing = [a for a in concerned(last) if a not in named and a not in str(out.get("error", ""))]
            if missing:
                findings.append(quote(last, f"{label}; the software did not name the recipients concerned",
                                      where="output.refused_recipients", expected=missing,
                                      got=out.get("refused_recipients")))
    return findings, refused


def concerned(exchange: Exchange) -> list[str]:
    """The recipients a refusal concerns: those the service's problem names, else every recipient."""
    problem = exchange.response_json
    named = problem.get("recipients") if isinstance(problem, dict) else None
    if isinstance(named, list) and named:
        return [str(a) for a in named]
    return recipients(exchange)


@check("docshare.refusal_reported", verifies=["DOCSHARE-024"], scenario=LIFECYCLE, reads_all=True)
def refusal_reported(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A submission, replacement or deletion the shared record refused is reported refused or error, with its code."""
    findings, refused = refusal_findings(trace, "dmp", ("document.submit", "document.replace", "document.delete"),
                                         ("accepted", "deleted"))
    if not refused:
        return not_exercised(Finding("the shared record refused no request of the software in this run (the scenarios "
                                     "submit a document type it does not allow), so the rule was not exercised"))
    return verdict(findings, refused, "refusal(s)")


# ---------------------------------------------------------------------------------------------
# DOCSHARE-021: retry after 503


def retry_findings(note: Note, attempts: list[Exchange], max_retries: int, tolerance: float) -> list[Finding]:
    """Each retry waited Retry-After, carried the same uniqueId and document, and there were at most N."""
    out = []
    first_uid = _uid(attempts[0])
    for prev, nxt in itertools.pairwise(attempts):
        if prev.status != 503:
            continue
        announced = float(prev.response_headers.get("retry-after", "0") or 0)
        end, start = when(prev.raw), started(nxt)
        if end is not None and start is not None and (start - end).total_seconds() < announced - tolerance:
            out.append(quote(nxt, f"{step_label(note)}: retried {(start - end).total_seconds():.3f} s after a 503 "
                             f"announcing Retry-After {announced:g} s", where="request time",
                             expected=f">= {announced:g} s", got=f"{(start - end).total_seconds():.3f} s"))
        if _uid(nxt) != first_uid:
            out.append(quote(nxt, f"{step_label(note)}: the retry carries a new uniqueId (a new document), so any "
                             "earlier attempt the record stored before losing its reply is duplicated",
                             where="metadata.unique_id", expected=first_uid, got=_uid(nxt)))
        out += other_document_findings(note, attempts[0], nxt)
    if len(attempts) - 1 > max_retries:
        out.append(quote(attempts[-1], f"{step_label(note)}: {len(attempts) - 1} retries", where="requests",
                         expected=f"at most {max_retries}", got=len(attempts) - 1))
    return out


def other_document_findings(note: Note, first_attempt: Exchange, retry: Exchange) -> list[Finding]:
    """A retry under the first attempt's uniqueId must carry its document too (the same bytes, base64 line breaks
    aside): a document built again for the retry is another submission under the same uniqueId."""
    sent, again = _document_sha1(first_attempt), _document_sha1(retry)
    if _uid(retry) != _uid(first_attempt) or sent == again:
        return []  # a new uniqueId is a finding of its own
    return [quote(retry, f"{step_label(note)}: the retry carries another document than the first attempt (exchange "
                         f"{first_attempt.seq}) under the same uniqueId", where="request.body.json.document",
                  expected=f"sha1 {sent}", got=f"sha1 {again}" if again else "no readable document")]


def _document_sha1(exchange: Exchange) -> str | None:
    body = exchange.request_json
    text = body.get("document") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return hashlib.sha1(base64.b64decode(re.sub(r"\s", "", text), validate=True)).hexdigest()
    except (binascii.Error, ValueError):
        return None


def _uid(exchange: Exchange) -> str | None:
    """A submission's uniqueId (a member of another type as its JSON text, to compare and show as sent)."""
    body = exchange.request_json
    meta = body.get("metadata") if isinstance(body, dict) else None
    uid = meta.get("unique_id") if isinstance(meta, dict) else None
    return uid if uid is None or isinstance(uid, str) else json.dumps(uid, sort_keys=True)


def copies_findings(trace: TraceView, steps: list[Note]) -> list[Finding]:
    """The record's final listing must hold at most one copy of each document these steps submitted."""
    answer, findings = final_list(trace), []
    for note in steps:
        posted = {_uid(s.exchange) for s in step_submissions(trace, note)}
        kept = [d.get("unique_id") for d in served_documents(answer)
                if d.get("unique_id") in posted or d.get("metadata", {}).get("title") == _title(note)]
        if len(kept) > 1:
            findings.append(quote(answer, f"the shared record holds {len(kept)} copies of the document submitted at "  # type: ignore[arg-type]  # Exchange | None narrowed by the loop's guard, which mypy does not follow
                                  f"{step_label(note)}", where="documents[].unique_id", expected="at most 1", got=kept))
    return findings


@check("docshare.retry_no_duplicate", verifies=["DOCSHARE-021"], scenario=RETRY, reads=(RETRY_GIVE_UP,))
def retry_no_duplicate(run: RunView, ctx: EvalContext) -> Verdict:
    """After a 503 the software waits Retry-After, retries the same uniqueId at most 3 times; one copy is kept."""
    max_retries = int(ctx.param("DOCSHARE-021", "max_retries", 3))
    tolerance = float(ctx.param("DOCSHARE-021", "tolerance_seconds", 0.2))
    findings: list[Finding] = []
    attempts_seen, steps_seen = 0, 0
    for scenario, name in ((RETRY, "submit"), (RETRY_GIVE_UP, "give_up")):
        trace = run.get(scenario)
        assert trace is not None
        steps = [n for n in trace.performed("document.submit") if n.data.get("name") == name]
        steps_seen += len(steps)
        for note in steps:
            attempts = [s.exchange for s in step_submissions(trace, note)]
            attempts_seen += len(attempts)
            if not any(e.status == 503 for e in attempts):
                findings.append(Missing(f"{step_label(note)}: the software sent nothing the shared record could "
                                        "answer 503 to, the retry rule was not exercised", exchange=note.seq,
                                        scenario=note.scenario, got=output(note) or note.data.get("failure")))
                continue
            findings += retry_findings(note, attempts, max_retries, tolerance)
        findings += copies_findings(trace, steps)
    if not steps_seen:
        return not_exercised(Finding("the scenarios never asked to submit a document while the shared record failed"))
    return judged(findings, f"{attempts_seen} attempt(s) checked")


#: the steps of docshare.retry_network and the failure each meets
NETWORK_FAILURES = {"rate_limited": "a 429 with Retry-After", "no_retry_after": "a 503 without Retry-After",
                    "reset": "a connection reset before the record read it",
                    "dropped_reply": "a connection closed without an answer after the record stored the document"}
UNANSWERED = ("connection-reset", "reply-dropped", "client-gave-up")


def network_retry_findings(note: Note, attempts: list[Exchange], max_retries: int, tolerance: float) -> list[Finding]:
    """After a 429/503 (with or without Retry-After) or no answer, a retry waits Retry-After, else at least 1 s, and
    carries the same submission; at most ``max_retries`` retries."""
    out = []
    first_uid = _uid(attempts[0])
    for prev, nxt in itertools.pairwise(attempts):
        if prev.status not in (429, 503) and prev.outcome not in UNANSWERED:
            continue
        announced = float(prev.response_headers.get("retry-after", "1") or 1)
        end, start = when(prev.raw), started(nxt)
        if end is not None and start is not None and (start - end).total_seconds() < announced - tolerance:
            out.append(quote(nxt, f"{step_label(note)}: retried {(start - end).total_seconds():.3f} s after "
                             f"{prev.outcome} (exchange {prev.seq}), which asks for at least {announced:g} s",
                             where="request time", expected=f">= {announced:g} s",
                             got=f"{(start - end).total_seconds():.3f} s"))
        if _uid(nxt) != first_uid:
            out.append(quote(nxt, f"{step_label(note)}: the retry carries a new uniqueId (a new document): a copy the "
                             "record stored before the failure is duplicated", where="metadata.unique_id",
                             expected=first_uid, got=_uid(nxt)))
        out += other_document_findings(note, attempts[0], nxt)
    if len(attempts) - 1 > max_retries:
        out.append(quote(attempts[-1], f"{step_label(note)}: {len(attempts) - 1} retries", where="requests",
                         expected=f"at most {max_retries}", got=len(attempts) - 1))
    return out


@check("docshare.retry_network_no_duplicate", verifies=["DOCSHARE-021"], scenario=RETRY_NETWORK,
       reads=(RETRY_REFUSED,))
def retry_network_no_duplicate(run: RunView, ctx: EvalContext) -> Verdict:
    """DOCSHARE 2.1: after a 429, a 503 without Retry-After, a reset or a reply never sent, any retry waits and carries
    the same submission, at most 3 times, and the record keeps one copy."""
    max_retries = int(ctx.param("DOCSHARE-021", "max_retries", 3))
    tolerance = float(ctx.param("DOCSHARE-021", "tolerance_seconds", 0.2))
    findings: list[Finding] = []
    met = 0
    for scenario, names in ((RETRY_REFUSED, ("rate_limited", "no_retry_after")),
                            (RETRY_NETWORK, ("reset", "dropped_reply"))):
        trace = run.get(scenario)
        assert trace is not None
        steps = []
        for name in names:
            note, what = step_named(trace, name), NETWORK_FAILURES[name]
            attempts = [s.exchange for s in step_submissions(trace, note)] if note else []
            if note is None or not [e for e in attempts if e.status in (429, 503) or e.outcome in UNANSWERED]:
                findings.append(Missing(f"step {name!r}: the software sent nothing that met {what}, so the retry rule "
                                        "was not exercised", exchange=note.seq if note else None, scenario=scenario,
                                        got=output(note) if note else None))
                continue
            met += 1
            steps.append(note)
            findings += network_retry_findings(note, attempts, max_retries, tolerance)
        findings += copies_findings(trace, steps)
    return judged(findings, f"{met} failure(s) met, retried as the rule says")


def _title(note: Note) -> Any:
    return note.data.get("input", {}).get("title")


# ---------------------------------------------------------------------------------------------
# DOCSHARE-005: nothing submitted for an identity that is not qualified


@check("docshare.unqualified_not_submitted", verifies=["DOCSHARE-005"], scenario=UNQUALIFIED, reads_all=True)
def unqualified_not_submitted(run: RunView, ctx: EvalContext) -> Verdict:
    """For a patient whose identity is not qualified, document.submit answers refused and sends nothing (in every
    scenario)."""
    findings, seen = [], 0
    for trace, note in ((t, n) for t in run for n in t.performed("document.submit")):
        who = identity_for(trace, note.data.get("input", {}).get("patient"), note.seq)
        if who.qualified:
            continue
        seen += 1
        for s in step_submissions(trace, note):
            carried = [el.get("extension") for el in ins_ids(s.root)] if s.root is not None else []
            findings.append(quote(s.exchange, f"{step_label(note)}: a document for {who.describe()} reached the shared "
                                  "record" + (f", carrying the INS {carried[0]}" if carried else ""),
                                  where=s.exchange.local_path, expected="no request", got=s.metadata.get("patient_id")))
        status = output(note).get("status")
        if status != "refused":
            findings.append(Finding(f"{step_label(note)}: for {who.describe()} the software did not answer refused",
                                    exchange=note.seq, scenario=note.scenario, where="output.status", expected="refused", got=status))
    if not seen:
        return not_exercised(Finding("the scenario asked for no document about a patient whose identity is not qualified"))
    return verdict(findings, seen, "submission request(s) for unqualified identities")


# ---------------------------------------------------------------------------------------------
# DOCSHARE-031, ETHICS-002: documents hidden by the patient


def hidden_documents(trace: TraceView) -> dict[str, str]:
    """uniqueId → author national id of every document the shared record showed as hidden."""
    out: dict[str, str] = {}
    for e in trace.exchanges("dmp", method="POST", path="/documents") + trace.exchanges("dmp", method="GET"):
        body = e.response_json
        docs = body.get("documents") if isinstance(body, dict) and "documents" in body else [body]
        for d in docs if isinstance(docs, list) else []:
            if isinstance(d, dict) and d.get("hidden") and d.get("unique_id"):
                out[str(d["unique_id"])] = str(d.get("metadata", {}).get("author_id", ""))
    return out


def _listing_findings(trace: TraceView, hidden: dict[str, str]) -> list[Finding]:
    out = []
    for note in trace.performed("document.list"):
        viewer = practitioner_at(trace, note.seq)
        for d in output(note).get("documents", []):
            uid = d.get("document_id") if isinstance(d, dict) else None
            if uid not in hidden:
                continue
            if viewer != hidden[uid]:
                out.append(Finding(f"{step_label(note)}: the hidden document {uid} is shown to practitioner {viewer}, "
                                   "who is not its author", exchange=note.seq, scenario=note.scenario, where="output.documents",
                                   expected="not listed", got=uid))
            elif d.get("hidden") is not True:
                out.append(Finding(f"{step_label(note)}: the hidden document {uid} is not marked hidden for its author",
                                   exchange=note.seq, scenario=note.scenario, where="output.documents[].hidden", expected=True,
                                   got=d.get("hidden")))
    return out


def _forward_findings(trace: TraceView, hidden: dict[str, str]) -> list[Finding]:
    out = []
    for note in trace.performed("message.send"):
        uid = (note.data.get("input", {}).get("attachment") or {}).get("document_id")
        if uid not in hidden:
            continue
        for e in step_exchanges(trace, note, "mss"):
            if e.method == "POST":
                out.append(quote(e, f"{step_label(note)}: the software sent a message forwarding the hidden document "
                               f"{uid}", where=e.local_path, expected="no request"))
        if output(note).get("status") not in ("refused", "error"):
            out.append(Finding(f"{step_label(note)}: forwarding the hidden document {uid} was not refused",
                               exchange=note.seq, scenario=note.scenario, where="output.status", expected="refused",
                               got=output(note).get("status")))
    return out


@check("docshare.hidden_flag_honoured", verifies=["DOCSHARE-031", "ETHICS-002"], scenario=V2_CONTENT)
def hidden_flag_honoured(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A hidden document is marked hidden for its author, shown to no other practitioner, never forwarded."""
    hidden = hidden_documents(trace)
    if not hidden:
        return not_exercised(Finding("the shared record shows no hidden document in this scenario (the document to hide "
                              "was not accepted), so the rule could not be verified"))
    findings = _listing_findings(trace, hidden) + _forward_findings(trace, hidden)
    return verdict(findings, len(hidden), "hidden document(s)")
