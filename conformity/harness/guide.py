"""What a vendor needs beside the requirements to write a driver: per referential, its driver actions (schemas,
an example input as the harness sends it), the scenarios that call them in order, and the protocol's conventions.

Rendered in the specification (``usine wave show``, every format) and by ``usine referentials show``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformity import plugins
from conformity.catalog import Action, Referential
from conformity.harness.scenario import SCENARIOS, Perform, ScenarioContext
from conformity.reporting.plan import step_lines


def logins() -> set[str]:
    """Every installed pack's login action."""
    return {p.login_action for p in plugins.installed().values() if p.login_action}


def sessionless() -> set[str]:
    """The actions that need no logged-in user (the logins, and each pack's raw connections)."""
    return logins() | {a for p in plugins.installed().values() for a in p.sessionless}

CONVENTIONS: tuple[tuple[str, str], ...] = (
    ("Transport", "JSON-RPC 2.0, one object a line: the harness writes requests on your driver's standard input and "
                  "reads one answer a line on its standard output. Write nothing else there (no print, no console.log): "
                  "anything else is a driver problem that puts every requirement judged on that scenario in error. "
                  "Log to standard error. Over HTTP: POST each request to the `url` of vendor.toml."),
    ("initialize", "Sent once per scenario, with the test session: {\"protocol\": \"usine.driver/1\", \"session\": "
                   "{\"id\", \"seed\", \"scenario\"}, \"endpoints\": {service: base URL}, \"credentials\": {\"client_id\", "
                   "\"client_secret\"}, \"trust_anchors\": {\"ca_certificates\": [PEM…]}, \"software\": {\"name\", "
                   "\"version\", \"registration_id\"}, \"fixtures\": {what your software knows locally: the pack's, "
                   "below}}. Configure your software "
                   "with these endpoints, trust only these CA certificates, and answer {\"software\": {\"name\", "
                   "\"version\"}, \"actions\": [the actions you support]}."),
    ("Who is logged in", "Actions that call a national service need a logged-in user. When a scenario asks for one "
                         "before any login action (see the scenarios below), log in the FIRST account of the fixtures "
                         "(the pack says which, below), as the reference vendor does; after a login, act as the user "
                         "last logged in."),
    ("Identifying the software", "Every request your software sends to a national service carries its name, version "
                                 "and registration id (the values of initialize's `software`) in its User-Agent, e.g. "
                                 "`Name/1.0.0 (REG-0001)`."),
    ("Actions you do not support yet", "Leave them out of initialize's `actions` (the steps that need them are "
                                       "skipped: the requirements judged on them are not-exercised) or answer a "
                                       "JSON-RPC error such as {\"code\": -32001, \"message\": \"not implemented: …\"} "
                                       "(error). Neither is ever a pass. `usine driver init DIR --lang python|javascript` "
                                       "writes a driver that does exactly that for every action."),
    ("perform and shutdown", "perform: {\"action\", \"input\"}; the input is valid against the action's input schema, "
                             "answer an object valid against its output schema (an invalid output is a driver problem). "
                             "A JSON-RPC error answer is recorded as the step's failure. shutdown: answer null and exit."),
)


@dataclass(frozen=True, slots=True)
class ScenarioUse:
    """A scenario calling an action, with its steps in order."""

    id: str
    title: str
    steps: tuple[str, ...]
    #: an action needing a logged-in user comes before any login (the "who is logged in" convention)
    implicit_login: bool
    #: when ``implicit_login``, who the driver logs in, in its pack's words (:func:`implicit_login_note`); else ""
    login_note: str = ""


@dataclass(frozen=True, slots=True)
class ActionGuide:
    action: Action
    scenarios: tuple[ScenarioUse, ...]
    example: dict[str, Any] | None  #: an input as the harness sends it
    example_from: str  #: where the example comes from (scenario, step)

    def to_json(self) -> dict[str, Any]:
        a = self.action
        return {"name": a.name, "description": a.description, "input": a.input, "output": a.output,
                "example": {"input": self.example, "from": self.example_from} if self.example is not None else None,
                "scenarios": [{"id": s.id, "title": s.title, "steps": list(s.steps), "logs_in_first_account":
                               s.implicit_login} for s in self.scenarios]}


def implicit_login(scenario_id: str) -> bool:
    """Whether the scenario asks for an action needing a logged-in user before any login."""
    for step in SCENARIOS.get(scenario_id).steps:
        if isinstance(step, Perform):
            if step.action in logins():
                return False
            if step.action not in sessionless():
                return True
    return False


def implicit_login_note(pack: str) -> str:
    """What a driver of ``pack`` does when a scenario needs a session before any login, from the pack's
    declaration (its login action, who logs in first)."""
    declared = plugins.get(pack)
    account = f"log in {declared.first_account or 'the first account of the fixtures'}"
    return f"no {declared.login_action} before: {account}" if declared.login_action else account


def conventions(pack: str) -> tuple[tuple[str, str], ...]:
    """The protocol's conventions, then ``pack``'s (its fixtures, who logs in): a driver of one pack's software is
    told nothing of another pack's."""
    return CONVENTIONS + plugins.get(pack).conventions


def _example(action: str, scenarios: list[str]) -> tuple[dict[str, Any] | None, str]:
    """The input of the first step asking for ``action`` that resolves on sample fixtures (seed 0, its pack's)."""
    from sandbox import plugins as sandbox_plugins

    samples = [p.fixtures(0) for p in sandbox_plugins.packs().values()]
    for sid in scenarios:
        for fixtures in samples:
            found = _resolved(action, sid, fixtures)
            if found is not None:
                return found
    return None, ""


def _resolved(action: str, sid: str, fixtures: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    ctx = ScenarioContext(fixtures=fixtures, seed=0)
    for step in SCENARIOS.get(sid).steps:
        if not isinstance(step, Perform):
            continue
        try:
            value = step.resolve(ctx)
        except Exception:  # an input built from an earlier step's output: not resolvable without a run
            continue
        if step.action == action:
            return value, f"scenario {sid}, step {step.name or step.action} (sample fixtures, seed 0)"
    return None


def action_guides(actions: tuple[Action, ...] | list[Action], pack: str,
                  scenarios: list[str] | None = None) -> list[ActionGuide]:
    """Each action of ``pack`` with the scenarios calling it (among ``scenarios``; every registered one when None)."""
    pool = list(scenarios) if scenarios is not None else list(SCENARIOS)
    note = implicit_login_note(pack)
    out = []
    for a in actions:
        calling = [s for s in pool if a.name in SCENARIOS.get(s).actions]
        uses = tuple(ScenarioUse(s, SCENARIOS.get(s).title, tuple(step_lines(s)), implicit, note if implicit else "")
                     for s, implicit in ((s, implicit_login(s)) for s in calling))
        example, source = _example(a.name, calling)
        out.append(ActionGuide(a, uses, example, source))
    return out


def referential_guides(refs: tuple[Referential, ...] | list[Referential],
                       scenarios: list[str] | None = None) -> dict[str, list[ActionGuide]]:
    """Referential id → the guides of the actions it declares."""
    return {r.id: action_guides(r.actions, r.pack, scenarios) for r in refs}
