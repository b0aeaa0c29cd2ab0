"""``usine run --plan``: what a run would do (requirements, scenarios and their steps, actions), without running."""

from __future__ import annotations

from typing import Any

from conformity.harness.plan import Plan
from conformity.harness.scenario import SCENARIOS, Perform, SetFaults, Shrink


def step_lines(scenario_id: str) -> list[str]:
    """One line per step of a scenario: the actions asked of the driver, the faults the sandbox injects."""
    lines = []
    for step in SCENARIOS.get(scenario_id).steps:
        if isinstance(step, Perform):
            lines.append(f"perform {step.action}" + (f" ({step.name})" if step.name else ""))
        elif isinstance(step, SetFaults):
            lines.append("sandbox faults: " + (", ".join(f"{svc} {faults}" for svc, faults in step.faults.items())
                                               if step.faults else "cleared"))
        elif isinstance(step, Shrink):
            lines.append(f"perform {step.action} again with smaller inputs, if the {step.service} service refused "
                         f"a step named {step.after}… as {step.outcome}")
    return lines


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as data: requirements with their proof, scenarios with their steps, the actions they call."""
    scenarios = [{"id": s, "title": SCENARIOS.get(s).title, "steps": step_lines(s)} for s in plan.scenarios]
    declared = {a.name: a.referential for a in plan.spec.actions}
    actions = list(dict.fromkeys(a for s in plan.scenarios for a in SCENARIOS.get(s).actions))
    return {
        "wave": plan.wave, "category": plan.category, "referentials": plan.referential_versions(),
        "requirements": [{"id": p.id, "level": p.applied.level, "method": p.applied.requirement.proof.method,
                          "checks": list(p.checks), "title": p.applied.requirement.title} for p in plan.requirements],
        "scenarios": scenarios,
        "actions": [{"name": a, "referential": declared.get(a, "?"),
                     "scenarios": [s for s in plan.scenarios if a in SCENARIOS.get(s).actions]} for a in actions],
    }


def plan_text(plan: Plan) -> str:
    data = plan_json(plan)
    reqs = plan.requirements
    automated = sum(1 for p in reqs if p.checks)
    lines = [f"Plan of a run: wave {plan.wave}, category {plan.category} — {len(reqs)} requirement(s) "
             f"({automated} automated), {len(plan.scenarios)} scenario(s), {len(data['actions'])} driver action(s). "
             "Nothing was run.", "", "Requirements:"]
    for r in data["requirements"]:
        proof = ", ".join(r["checks"]) if r["checks"] else f"{r['method']} evidence to attach (no scenario)"
        lines.append(f"  {r['id']:<15} {r['level']:<7}{r['title']} — {proof}")
    lines += ["", "Scenarios (each in its own sandbox session, with a fresh driver process):"]
    for s in data["scenarios"]:
        lines.append(f"  {s['id']} — {s['title']}")
        lines += [f"    {i}. {text}" for i, text in enumerate(s["steps"], start=1)]
    lines += ["", "Driver actions the scenarios call (answer each, or the requirements judged on them are in error):"]
    for a in data["actions"]:
        lines.append(f"  {a['name']:<20} declared by {a['referential']}; called by {', '.join(a['scenarios'])}")
    return "\n".join(lines) + "\n"
