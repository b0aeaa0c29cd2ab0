"""Checks: patient identity (PATIENTID, ETHICS-003), on the trace of scenario ``patientid.lookups``.

What the sandbox saw decides which rule applies to a look-up: its answer to the software's last
request of that step (match, no match, several, an HTTP error, or a match deliberately carrying an
INS out of format). The status, INS and traits the software recorded are those its driver
answered for the step, checked against that answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import as_token, noted, performed, quote, step_exchanges
from conformity.checks.model import Finding, Verdict, about, failed, not_exercised, passed
from conformity.checks.registry import check
from conformity.checks.trace import Exchange, Note, RunView, TraceView, views
from conformity.packs.health.ins import INS_OIDS, TRAITS, normalise_name, normalise_traits

SCENARIO = "patientid.lookups"
FAILURES = "patientid.service_failures"
QUALIFYING = ("recovered", "qualified")
OUTCOMES = {"lookup-match": "match", "lookup-no-match": "no_match", "lookup-multiple": "multiple"}


@dataclass(frozen=True, slots=True)
class Lookup:
    """One patient.lookup step: what the harness asked, what the sandbox answered, what the driver said."""

    note: Note
    requests: tuple[Exchange, ...]

    @property
    def name(self) -> str:
        return str(self.note.data.get("name", ""))

    @property
    def input(self) -> dict[str, Any]:
        given: dict[str, Any] = self.note.data.get("input", {})
        return given

    @property
    def output(self) -> dict[str, Any] | None:
        data = self.note.data
        if "output" not in data or data.get("output_invalid") or not isinstance(data["output"], dict):
            return None
        return data["output"]

    @property
    def answer(self) -> Exchange | None:
        """The sandbox's answer to the step's last look-up request."""
        return self.requests[-1] if self.requests else None

    @property
    def outcome(self) -> str:
        """match, malformed (a match carrying a faulty INS), no_match, multiple, error, or none."""
        if self.answer is None:
            return "none"
        kind = OUTCOMES.get(self.answer.outcome, "error")
        return "malformed" if kind == "match" and self.answer.details.get("fault") else kind

    def label(self) -> str:
        return f"look-up {self.name!r}"


def lookups(subject: TraceView | RunView) -> list[Lookup]:
    """Every patient.lookup step (of every scenario of a RunView) with the identity-service requests it caused."""
    out = []
    for trace in views(subject):
        for note in performed(trace, "patient.lookup"):
            requests = [e for e in step_exchanges(trace, note, "insi")
                        if e.method == "POST" and e.local_path == "/lookup"]
            out.append(Lookup(note, tuple(requests)))
    return out


def no_output(step: Lookup) -> Finding:
    """Why a step has no usable output (driver failure, unsupported action, invalid output)."""
    data = step.note.data
    why = ("the software does not support patient.lookup" if data.get("unsupported")
           else f"the driver failed: {data['failure'].get('message', '')}" if "failure" in data
           else "the output does not match the action's schema")
    return Finding(f"{step.label()}: no identity recorded to check ({why})", exchange=step.note.seq, scenario=step.note.scenario,
                   got=data.get("failure") or data.get("output_invalid"))


def not_shown(what: str) -> Verdict:
    """The situation the rule is about never happened in the run: not exercised (never a pass)."""
    return not_exercised(Finding(f"the run shows no {what}, so the rule was not exercised"))


def qualifying_findings(step: Lookup, why: str) -> list[Finding]:
    """Findings if the step recorded an INS or a recovered/qualified status."""
    out = step.output
    if out is None:
        return [no_output(step)]
    found = []
    if out.get("status") in QUALIFYING:
        found.append(Finding(f"{step.label()}: {why}, yet the software recorded status {out['status']!r}",
                             exchange=step.note.seq, scenario=step.note.scenario, where="output.status",
                             expected="provisional or validated",
                             got=out["status"]))
    if out.get("ins"):
        found.append(Finding(f"{step.label()}: {why}, yet the software recorded an INS",
                             exchange=step.note.seq, scenario=step.note.scenario,
                             where="output.ins", expected=None, got=out["ins"]))
    return found


# --------------------------------------------------------------------------------------------------

@check("ins.lookup_strict_traits", verifies=["PATIENTID-001", "ETHICS-003"], scenario=SCENARIO, reads_all=True)
def lookup_strict_traits(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Each look-up asked for sends a request with exactly the five strict traits, in the body, and nothing else."""
    steps = lookups(trace)
    requests = [e for s in steps for e in s.requests]
    if not requests:
        return not_shown("look-up request reaching the identity service")
    findings = [noted(s.note, f"{s.label()}: the operator asked for a look-up, the software never called the identity "
                              "service", expected="a look-up request", got=s.output) for s in steps
                if not s.requests and not s.note.data.get("unsupported") and "failure" not in s.note.data]
    for e in requests:
        body = e.request_json
        keys = sorted(body) if isinstance(body, dict) else None
        if keys != sorted(TRAITS):
            extra = sorted(set(keys or ()) - set(TRAITS))
            findings.append(quote(e, "the look-up request does not carry exactly the five strict traits"
                                  + (f" (also sends {', '.join(extra)})" if extra else ""),
                                  where="request.body.json", expected=sorted(TRAITS), got=keys))
        if e.query:
            findings.append(quote(e, "the look-up request sends data in its query string", where="request.query",
                                  expected={}, got=sorted(e.query)))
        headers = sorted(name for name, value in e.request_headers().items()
                         if any(as_token(v, str(value)) or as_token(v, normalise_name(str(value)))
                                for v in personal_of(e, steps)))
        if headers:
            findings.append(quote(e, f"the look-up request carries the patient's data in header(s) {', '.join(headers)}",
                                  where="request.headers", expected="the traits in the body only", got=headers))
    if findings:
        return failed(*findings)
    return passed(f"{len(requests)} look-up request(s), each with exactly the five strict traits")


def personal_of(e: Exchange, steps: list[Lookup]) -> set[str]:
    """The patient's names (4 characters or more, as typed and normalised) and birth date, as its step's input gives
    them: a look-up request carries them in its body alone."""
    step = next((s for s in steps if e in s.requests), None)
    given = [step.input] if step else []
    values: set[str] = set()
    for traits in given + [normalise_traits(g) for g in given]:
        values |= {str(traits[k]) for k in ("birth_name", "first_names") if len(str(traits.get(k) or "")) >= 4}
        values |= {str(traits[k]) for k in ("birth_date",) if traits.get(k)}
    return values


def normalisation_findings(step: Lookup) -> list[Finding]:
    """How the traits the step sent differ from the typed traits once normalised."""
    wanted = normalise_traits(step.input)
    found = []
    for e in step.requests:
        body = e.request_json if isinstance(e.request_json, dict) else {}
        for name in TRAITS:
            if body.get(name) != wanted[name]:
                rules = broken_rules(body.get(name), wanted[name]) if name in ("birth_name", "first_names") \
                    else ("PATIENTID-002",)
                which = " (hyphen/apostrophe rule, PATIENTID-003)" if "PATIENTID-003" in rules else ""
                found.append(quote(e, f"{step.label()}: trait {name} typed {step.input.get(name)!r} was not sent "
                                      f"normalised{which}",
                                   where=f"request.body.json.{name}", expected=wanted[name], got=body.get(name))
                             .about(*rules))
        if e.outcome == "traits-not-normalised":
            found.append(quote(e, f"{step.label()}: the identity service refused the traits as not normalised",
                               where="response", got=e.details.get("traits")))
    return found


SEPARATOR = re.compile(r"\s*[-'’‘‐–]\s*")


def broken_rules(got: Any, wanted: str) -> tuple[str, ...]:
    """Which rules a name sent as ``got`` instead of ``wanted`` breaks: hyphens and apostrophes (PATIENTID-003: a
    single ASCII character, no space around), the rest of the normalisation (PATIENTID-002: case, diacritics,
    other characters, spaces)."""
    text = got if isinstance(got, str) else ""
    rules = []
    if [m.group(0) for m in SEPARATOR.finditer(text)] != [m.group(0) for m in SEPARATOR.finditer(wanted)]:
        rules.append("PATIENTID-003")
    def squash(value: str) -> str:  # the name without its separators and spaces
        return re.sub(r"\s+", "", SEPARATOR.sub("", value))

    if squash(text) != squash(wanted):
        rules.append("PATIENTID-002")
    return tuple(rules) or ("PATIENTID-002",)


def shrunk_findings(subject: TraceView | RunView) -> list[Finding]:
    """The smallest generated input still refused, if the harness shrank one (note ``shrink.result``)."""
    out = []
    for note in (n for t in views(subject) for n in t.notes("shrink.result")):
        data = note.data
        if data.get("reproduced"):
            out.append(Finding(f"smallest failing example found by shrinking ({data['attempts']} attempts): "
                               f"{ {k: data['smallest'][k] for k in ('birth_name', 'first_names')} }",
                               exchange=data.get("exchange"), scenario=note.scenario, where="request.body.json",
                               expected=normalise_traits(data["smallest"]), got=data["smallest"]))
    return out


@check("ins.traits_normalised", verifies=["PATIENTID-002", "PATIENTID-003"], scenario=SCENARIO, reads_all=True)
def traits_normalised(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Every look-up sends the typed traits normalised (case, diacritics, ligatures, hyphens, apostrophes)."""
    steps = lookups(trace)
    findings = []
    for step in steps:  # a look-up never sent is PATIENTID-001's (ins.lookup_strict_traits): nothing to normalise
        findings += normalisation_findings(step)
    if not any(s.requests for s in steps):
        return not_shown("look-up request reaching the identity service")
    if findings:
        blamed = sorted({r for f in findings for r in f.requirements}) if all(f.requirements for f in findings) else []
        return failed(*findings, *about(blamed, shrunk_findings(trace)))
    sent = [s for s in steps if s.requests]
    changed = sum(normalise_traits(s.input) != {k: s.input.get(k) for k in TRAITS} for s in sent)
    return passed(f"{len(sent)} look-up(s) sent normalised traits ({changed} typed with characters to normalise)")


def expected_status(outcome: str, document_checked: bool) -> str:
    """The status a look-up outcome calls for (PATIENTID-004/005)."""
    if outcome == "match":
        return "qualified" if document_checked else "recovered"
    return "validated" if document_checked else "provisional"


def status_findings(trace: TraceView, single: bool) -> tuple[list[Finding], int]:
    """Findings on the look-ups answered with a single match (or without one), and how many there were.

    A step whose look-up never reached the service ("none") is one where no look-up returned a single
    match: an identity the software recorded for it is judged by PATIENTID-005 (a step without any output
    either is left to the checks that need its request).
    """
    findings, seen = [], 0
    wanted = ("match",) if single else ("no_match", "multiple", "none")
    for step in lookups(trace):
        if step.outcome not in wanted or (step.outcome == "none" and step.output is None):
            continue
        seen += 1
        if step.output is None:
            findings.append(no_output(step))
            continue
        checked = bool(step.input.get("identity_document_checked", False))
        want = expected_status(step.outcome, checked)
        answered = ("no look-up request reached the identity service" if step.answer is None
                    else f"the service answered {step.outcome} (exchange {step.answer.seq})")
        if step.output.get("status") != want:
            findings.append(Finding(
                f"{step.label()}: {answered}"
                f" and the identity document was {'' if checked else 'not '}checked, so the status must be {want}",
                exchange=step.note.seq, scenario=step.note.scenario, where="output.status", expected=want, got=step.output.get("status")))
    return findings, seen


def status_verdict(trace: TraceView, single: bool, counted: str, situation: str) -> Verdict:
    """:func:`status_findings`' verdict: fails on any finding; else passes on the ``seen`` look-ups (``counted``
    names them), or leaves ``situation`` not shown when there was none."""
    findings, seen = status_findings(trace, single=single)
    if findings:
        return failed(*findings)
    return passed(f"{seen} {counted}, statuses as the rule says") if seen else not_shown(situation)


@check("ins.status_after_single_match", verifies=["PATIENTID-004"], scenario=SCENARIO, reads_all=True)
def status_after_single_match(trace: TraceView, ctx: EvalContext) -> Verdict:
    """After a single match: qualified with a checked identity document, recovered without."""
    return status_verdict(trace, True, "single match(es)", "look-up answered with a single match")


@check("ins.status_without_single_match", verifies=["PATIENTID-005"], scenario=SCENARIO, reads_all=True)
def status_without_single_match(trace: TraceView, ctx: EvalContext) -> Verdict:
    """No single match (none, several, no look-up): validated with a checked document, else provisional."""
    return status_verdict(trace, False, "look-up(s) without a single match", "look-up answered without a single match")


@check("ins.no_match_not_qualified", verifies=["PATIENTID-006"], scenario=SCENARIO, reads_all=True)
def no_match_not_qualified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """After a no-match answer the identity is neither recovered nor qualified and has no INS."""
    steps = [s for s in lookups(trace) if s.outcome == "no_match"]
    if not steps:
        return not_shown("look-up answered with no match")
    findings = [f for s in steps for f in qualifying_findings(s, "the service found no match")]
    if findings:
        return failed(*findings)
    return passed(f"{len(steps)} no-match answer(s), no INS and no qualifying status")


@check("ins.several_matches_not_qualified", verifies=["PATIENTID-007"], scenario=SCENARIO, reads_all=True)
def several_matches_not_qualified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """After a several-matches answer no candidate is picked: no INS, neither recovered nor qualified."""
    steps = [s for s in lookups(trace) if s.outcome == "multiple"]
    if not steps:
        return not_shown("look-up answered with several matches")
    findings = []
    for s in steps:
        count = s.answer.response_json.get("count") if s.answer and isinstance(s.answer.response_json, dict) else None
        findings += qualifying_findings(s, f"the service found {count or 'several'} matching identities")
    return failed(*findings) if findings else passed(f"{len(steps)} several-matches answer(s), no identity picked")


def identity_of(answer: Exchange) -> dict[str, Any]:
    body = answer.response_json if isinstance(answer.response_json, dict) else {}
    identity = body.get("identity")
    return identity if isinstance(identity, dict) else {}


@check("ins.registered_traits_recorded", verifies=["PATIENTID-008"], scenario=SCENARIO, reads_all=True)
def registered_traits_recorded(trace: TraceView, ctx: EvalContext) -> Verdict:
    """After a single match the recorded traits are the registered ones, character for character."""
    steps = [s for s in lookups(trace) if s.outcome == "match"]
    if not steps:
        return not_shown("look-up answered with a single match")
    findings = []
    for s in steps:
        if s.output is None:
            findings.append(no_output(s))
            continue
        registered = identity_of(s.answer).get("traits", {})  # type: ignore[arg-type]  # the step's answer exchange is present on this branch (steps without one returned above)
        recorded = s.output.get("traits", {})
        for name in TRAITS:
            if recorded.get(name) != registered.get(name):
                findings.append(Finding(f"{s.label()}: trait {name} recorded differs from the registered one "
                                        f"(exchange {s.answer.seq})", exchange=s.note.seq, scenario=s.note.scenario,  # type: ignore[union-attr]  # the step's answer exchange is present on this branch (steps without one returned above)
                                        where=f"output.traits.{name}", expected=registered.get(name),
                                        got=recorded.get(name)))
    return failed(*findings) if findings else passed(f"{len(steps)} match(es), registered traits recorded as returned")


def ins_findings(step: Lookup) -> list[Finding]:
    """A genuine match: the recorded INS and OID are the returned ones, of the right form."""
    if step.output is None:
        return [no_output(step)]
    identity = identity_of(step.answer)  # type: ignore[arg-type]  # the step's answer exchange is present on this branch (steps without one returned above)
    found = []
    for name in ("ins", "oid"):
        if step.output.get(name) != identity.get(name):
            found.append(Finding(f"{step.label()}: the recorded {name.upper()} is not the one returned "
                                 f"(exchange {step.answer.seq})", exchange=step.note.seq, scenario=step.note.scenario,  # type: ignore[union-attr]  # the step's answer exchange is present on this branch (steps without one returned above)
                                 where=f"output.{name}", expected=identity.get(name), got=step.output.get(name)))
    if step.output.get("oid") and step.output["oid"] not in INS_OIDS:
        found.append(Finding(f"{step.label()}: the recorded OID is not an INS assigning authority",
                             exchange=step.note.seq, scenario=step.note.scenario, where="output.oid", expected=sorted(INS_OIDS),
                             got=step.output["oid"]))
    return found


def malformed_findings(step: Lookup) -> list[Finding]:
    """A match carrying a faulty INS or OID: rejected, the identity unchanged."""
    fault = step.answer.details.get("fault") if step.answer else None
    why = f"the service returned an INS out of format ({fault}, exchange {step.answer.seq if step.answer else '?'})"
    found = qualifying_findings(step, why)
    if step.output is not None and normalise_traits(step.output.get("traits", {})) != normalise_traits(step.input):
        found.append(Finding(f"{step.label()}: {why}, yet the recorded traits changed", exchange=step.note.seq, scenario=step.note.scenario,
                             where="output.traits", expected=step.input, got=step.output.get("traits")))
    return found


@check("ins.ins_format_valid", verifies=["PATIENTID-009"], scenario=SCENARIO, reads_all=True)
def ins_format_valid(trace: TraceView, ctx: EvalContext) -> Verdict:
    """The INS and OID recorded are those returned; an INS or OID out of format is rejected."""
    steps = lookups(trace)
    good = [s for s in steps if s.outcome == "match"]
    bad = [s for s in steps if s.outcome == "malformed"]
    if not good or not bad:
        return not_shown("single match with a well-formed INS and one with a malformed INS")
    findings = [f for s in good for f in ins_findings(s)] + [f for s in bad for f in malformed_findings(s)]
    if findings:
        return failed(*findings)
    return passed(f"{len(good)} INS recorded as returned, {len(bad)} malformed answer(s) rejected")


NETWORK_OUTCOMES = {"connection-reset": "the connection was reset before the look-up was processed",
                    "reply-dropped": "the service processed the look-up and closed the connection without answering"}


def failure_of(answer: Exchange) -> str:
    """What went wrong with a look-up request, in words."""
    if answer.outcome in NETWORK_OUTCOMES:
        return NETWORK_OUTCOMES[answer.outcome]
    if answer.outcome == "client-gave-up" and answer.details.get("answered_after_client_left"):
        return f"the service was late and the software gave up after {answer.details.get('waited_s')} s"
    if answer.outcome == "client-gave-up":
        return f"the service held its answer and the software gave up after {answer.details.get('waited_s')} s"
    return f"the service answered HTTP {answer.status} ({answer.outcome})"


@check("ins.service_error_handled", verifies=["PATIENTID-011"], scenario=SCENARIO, reads_all=True,
       reads=(FAILURES,))
def service_error_handled(trace: TraceView, ctx: EvalContext) -> Verdict:
    """After an HTTP error from the service, or no answer (connection reset or closed, answer held past the
    software's timeout): no INS, no qualifying status, traits kept, failure reported; and no wait past 30 s."""
    limit = float(ctx.param("PATIENTID-011", "timeout_seconds", 30))
    steps = [s for s in lookups(trace) if s.outcome == "error"]
    if not any(s.answer and s.answer.status >= 500 for s in steps):
        return not_shown("look-up answered with a server error")
    findings = []
    for s in lookups(trace):  # an answer the software waited for past the limit
        waited = [e for e in s.requests if float(e.details.get("late_by_s") or e.details.get("waited_s") or 0) > limit]
        findings += [quote(e, f"{s.label()}: the software waited {e.details.get('late_by_s') or e.details.get('waited_s')}"
                              f" s for the identity service's answer (at most {limit:g} s)", where="request time",
                           expected=f"<= {limit:g} s", got=e.details.get("late_by_s") or e.details.get("waited_s"))
                     for e in waited]
    for s in steps:
        why = failure_of(s.answer)  # type: ignore[arg-type]  # the step's answer exchange is present on this branch (steps without one returned above)
        findings += qualifying_findings(s, why)
        if s.output is None:
            continue
        if normalise_traits(s.output.get("traits", {})) != normalise_traits(s.input):
            findings.append(noted(s.note, f"{s.label()}: {why}, yet the recorded traits changed", where="output.traits",
                                  expected=s.input, got=s.output.get("traits")))
        if not str(s.output.get("error", "")).strip():
            findings.append(noted(s.note, f"{s.label()}: {why}, and the software reported no failure to the operator",
                                  where="output.error", expected="a message"))
    if findings:
        return failed(*findings)
    return passed(f"{len(steps)} look-up(s) answered with an error left the identity unchanged and were reported")

