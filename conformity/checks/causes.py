"""Why a scenario did not run as planned: the driver's problems, unsupported actions, the services' refusals.

A check judges what the software did in the situations a scenario set up. When a step of that scenario did
not run as planned — the driver crashed, hung, wrote something that is not a JSON-RPC answer, answered an
error or an output outside the action's schema, said it does not support the action, or the sandbox's
service refused the software's credentials (401/403) — the situation was not shown to the software, and
whatever the check concludes rests on a run that did not happen. :func:`attribute` then makes the verdict
say so: the cause comes first, naming the scenario and the step, and the verdict is ``error`` (or
``not-exercised`` when the check found none of its situations anyway), never a ``pass`` and never a plain
``fail`` blaming the software's conformity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from conformity.checks.helpers import step_exchanges
from conformity.checks.model import Finding, Verdict
from conformity.checks.trace import Note, TraceView, TraceViews

#: the sandbox's refusals of the software's credentials: the service never did what the step asked
CREDENTIAL_REFUSALS = frozenset({"token-missing", "token-invalid", "token-other-session", "token-wrong-kind",
                                 "token-expired", "token-scope-insufficient"})
#: the sandbox's refusals of a request it cannot read one way only (a JSON member named twice, a query parameter given
#: twice, a single-valued header given twice, ``sandbox.deps``): the service did nothing with it, and a check reading
#: the recorded request cannot tell which value the software meant, so what it concludes of that step is no verdict
#: on the software
AMBIGUOUS_REFUSALS = frozenset({"duplicate-member", "query-param-repeated", "header-repeated"})
#: a kind of problem → whether it is the driver's (``driver``), the software's choice (``unsupported``) or the
#: service's refusal (``refused``)
KINDS = ("driver", "unsupported", "refused")
DRIVER_WORDS = {
    "garbage": "answered something that is not a JSON-RPC 2.0 answer",
    "crash": "exited", "timeout": "did not answer in time", "rpc-error": "answered a JSON-RPC error",
    "start-failed": "could not be started", "invalid-answer": "answered outside the driver protocol",
    "unreachable": "could not be reached",
}
#: what a driver started by the harness is told when it wrote something else than an answer on its standard output
STDOUT_ADVICE = "only JSON-RPC lines may go on the driver's standard output; log to standard error"
#: what a driver that did not answer in time is told: where the limit it passed is set
TIMEOUT_ADVICE = "the limit is timeout in the [driver] table of vendor.toml"
#: how many of an output's schema errors a step problem's message names (every one is in its details)
SCHEMA_ERRORS_SHOWN = 3


@dataclass(frozen=True, slots=True)
class StepProblem:
    """One step of one scenario that did not run as planned, and why."""

    scenario: str
    step: str  #: the step's name ("" for the driver's start or initialize)
    action: str  #: the action asked, or "initialize" / "start"
    kind: str  #: driver, unsupported or refused
    message: str
    seq: int | None = None
    details: Any = None

    def where(self) -> str:
        step = f"step {self.step!r} ({self.action})" if self.step else self.action
        return f"scenario {self.scenario}, {step}"

    def finding(self) -> Finding:
        return Finding(f"{self.where()}: {self.message}", exchange=self.seq, scenario=self.scenario,
                       where=f"{self.kind} problem", got=self.details)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scenario": self.scenario, "step": self.step, "action": self.action, "kind": self.kind,
                               "message": self.message}
        if self.seq is not None:
            out["seq"] = self.seq
        if self.details is not None:
            out["details"] = self.details
        return out


def driver_message(failure: Mapping[str, Any], when: str) -> str:
    """A driver failure (``DriverFailure.to_json()``) in words, with what it wrote."""
    kind = str(failure.get("kind", ""))
    words = DRIVER_WORDS.get(kind, kind)
    if kind == "crash" and failure.get("exit_code") is not None:
        words += f" (exit code {failure['exit_code']})"
    text = f"the driver {words} {when}: {failure.get('message', '')}"
    if kind == "timeout" and "url" not in failure:
        text += f" ({TIMEOUT_ADVICE})"
    if kind in ("crash", "start-failed"):  # what the process said last is most often why it ended
        last = last_stderr_line(failure)
        if last:
            text += f" — its last line on standard error: {last[:300]!r}"
    if failure.get("raw") and kind in ("garbage", "invalid-answer"):
        text += f" — it wrote {str(failure['raw']).strip()[:200]!r}"
        if kind == "garbage" and "url" not in failure:  # a driver the harness started, on its standard output
            text += f" ({STDOUT_ADVICE})"
    return text


def last_stderr_line(failure: Mapping[str, Any]) -> str:
    """The last line with text of a driver failure's standard error tail ("" when it wrote none)."""
    tail = failure.get("stderr_tail")
    lines = [str(line).strip() for line in tail] if isinstance(tail, list) else []
    return next((line for line in reversed(lines) if line), "")


def schema_errors_said(errors: Iterable[Any]) -> str:
    """An output's schema errors in one phrase: the first few, and how many more."""
    listed = [str(e) for e in errors]
    said = "; ".join(listed[:SCHEMA_ERRORS_SHOWN])
    more = len(listed) - SCHEMA_ERRORS_SHOWN
    return said + (f"; and {more} more" if more > 0 else "")


def _failure_details(failure: Mapping[str, Any]) -> dict[str, Any]:
    return {k: failure[k] for k in ("kind", "raw", "error", "stderr_tail", "exit_code") if k in failure}


def perform_problems(trace: TraceView, note: Note) -> list[StepProblem]:
    """The problems of one ``driver.perform`` step: the driver's, an unsupported action, a service's refusals."""
    data, sid = note.data, trace.scenario
    step, action = str(data.get("name", "")), str(data.get("action", ""))
    if data.get("unsupported"):
        return [StepProblem(sid, step, action, "unsupported", f"the software does not support action {action} (its "
                            "driver's initialize answer does not list it), so the step did not run", note.seq)]
    if "failure" in data:
        return [StepProblem(sid, step, action, "driver", driver_message(data["failure"], f"on {action}"), note.seq,
                            _failure_details(data["failure"]))]
    out = []
    if data.get("output_invalid"):
        out.append(StepProblem(sid, step, action, "driver", f"the driver's output does not match the output schema of "
                               f"{action}: {schema_errors_said(data['output_invalid'])}", note.seq,
                               {"errors": data["output_invalid"], "output": data.get("output")}))
    for e in step_exchanges(trace, note):
        if (e.status in (401, 403) and e.outcome in CREDENTIAL_REFUSALS) or \
                (e.status == 400 and e.outcome in AMBIGUOUS_REFUSALS):
            detail = e.details.get("detail", "")
            out.append(StepProblem(sid, step, action, "refused",
                                   f"the {e.service} service refused the software's request {e.method} {e.local_path}: "
                                   f"HTTP {e.status} {e.outcome}" + (f" ({detail})" if detail else ""), e.seq,
                                   {"status": e.status, "outcome": e.outcome}))
    return out


def step_problems(trace: TraceView) -> list[StepProblem]:
    """Every step of one scenario's trace that did not run as planned (``trace.scenario`` names it)."""
    out = []
    for note in trace.notes("driver.failure"):  # the driver never started, or failed at initialize
        method = str(note.data.get("method", "initialize"))
        out.append(StepProblem(trace.scenario, "", method, "driver",
                               driver_message(note.data, f"at {method}") + ": no step of the scenario ran",
                               note.seq, _failure_details(note.data)))
    for note in trace.performed():
        out += perform_problems(trace, note)
    return out


def problems_of_run(traces: Mapping[str, dict[str, Any]]) -> list[StepProblem]:
    """Every step problem of a run, scenario by scenario (what reports show at their top)."""
    return [p for sid in traces for p in step_problems(TraceView(traces[sid], sid))]


def relevant(own: Iterable[str], read: Iterable[str], traces: Mapping[str, dict[str, Any]],
             shared: TraceViews | None = None) -> list[StepProblem]:
    """The step problems a check's verdict rests on: every one of its own scenarios, and in the other scenarios it
    reads, those of steps asking for an action its own scenarios ask for (the situations it judges). ``shared``: the
    views (and step problems) of the run's traces made once for all its checks."""
    shared = shared if shared is not None else TraceViews()
    own = [s for s in dict.fromkeys(own) if s in traces]
    found = [p for s in own for p in shared.derived(traces[s], s, step_problems)]
    actions = {str(n.data.get("action")) for s in own for n in shared.view(traces[s], s).performed()}
    for sid in read:
        if sid in own or sid not in traces:
            continue
        found += [p for p in shared.derived(traces[sid], sid, step_problems) if p.step and p.action in actions]
    return found


def attribute(verdict: Verdict, problems: list[StepProblem]) -> Verdict:
    """The verdict once the steps it rests on are known not to have run as planned (unchanged when they all did).

    The causes come first. A check that found none of its situations stays ``not-exercised``, and so does one whose
    only problems are actions the software does not support; anything else is an ``error`` (not applicable, pass and
    fail alike: what the check concluded rests on steps that did not run) — except a refusal the failure itself is
    about (:func:`own_doing`): sending the wrong credential is the software's failure, not a cause.
    """
    problems = [p for p in problems if not own_doing(verdict, p)]
    if not problems:
        return verdict
    causes = tuple(p.finding() for p in problems)
    unsupported_only = all(p.kind == "unsupported" for p in problems)
    if verdict.status == "not-exercised" or (unsupported_only and verdict.status != "fail"):
        return Verdict("not-exercised", causes + verdict.findings)
    kept = verdict.findings if verdict.status in ("fail", "error") else ()
    return Verdict("error", causes + kept)


def own_doing(verdict: Verdict, problem: StepProblem) -> bool:
    """Whether a service's refusal of the software's credentials is what the failing verdict proves wrong: a failing
    finding about the credential of that very request (``request.auth``: an ID token sent as a Bearer credential, a
    token of another session). Such a refusal is the failure's consequence, not a cause that kept the situation from
    the software; any other finding on a refused request (what the software made of the answer) stays in error."""
    if verdict.status != "fail" or problem.kind != "refused" or problem.seq is None:
        return False
    return any(f.exchange == problem.seq and f.scenario in ("", problem.scenario) and f.where.startswith("request.auth")
               for f in verdict.findings)
