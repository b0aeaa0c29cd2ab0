"""Every fault the sandbox offers the health pack's sessions is set by a scenario, or says why none does.

A fault no scenario sets is a situation the judge never shows: the defects that only it would reveal go
unseen (the first family of blind spots of issue 10). Adding a fault without a scenario, or dropping the
step that sets one, fails here.
"""

from __future__ import annotations

from typing import Any

from conformity import plugins
from conformity.harness.scenario import SCENARIOS, SetFaults
from sandbox import faults
from sandbox import plugins as sandbox_plugins

#: faults of the health pack's services that no scenario sets → why
NOT_SET_BY_A_SCENARIO: dict[tuple[str, str], str] = {
    **{(service, "retry_after"): "a value of the 503/429 faults (the delay they announce), not a situation of its own; "
                                 "the sandbox's --retry-after default (1 s) applies when a scenario leaves it out"
       for service in ("insi", "mss", "directory")},
    ("dmp", "slow"): "delays every answer (0-30 s; the sandbox's own tests of slow answers use it): a delay within the "
                     "software's timeout is no failure a requirement speaks of, one past it is the stall below",
    ("dmp", "stall"): "DOCSHARE-021 names resets and replies closed without an answer (both set by "
                      "docshare.retry_network); a held answer shows only after the software's own timeout (RefApp's is "
                      "15 s), which would make every 2027-W2 run that much longer",
    **{("mss", name): "no MESSAGING requirement speaks of the messaging service's network failures (MESSAGING-008, "
                      "refusals reported, is judged on the 503 of messaging.send)"
       for name in ("rate_limited", "omit_retry_after", "reset", "dropped_replies", "stall")},
    **{("directory", name): "no DIRECTORY requirement speaks of the directory's failures: its searches are judged on "
                            "what they answer"
       for name in ("unavailable", "rate_limited", "omit_retry_after", "reset", "dropped_replies", "stall")},
}


def set_by_scenarios() -> set[tuple[str, str, Any]]:
    """(service, fault, value for the enumerated faults) of every SetFaults step of every registered scenario."""
    plugins.register_all()
    found: set[tuple[str, str, Any]] = set()
    for _, sc in SCENARIOS.items():
        for step in sc.steps:
            if isinstance(step, SetFaults):
                for service, spec in step.faults.items():
                    for name, value in (spec or {}).items():
                        found.add((service, name, value if isinstance(value, str) else None))
    return found


def test_every_fault_of_the_health_pack_is_set_by_a_scenario_or_says_why_not() -> None:
    health = sandbox_plugins.pack_of("health")
    catalogue = faults.catalogue()
    done = set_by_scenarios()
    unset = set()
    for service in health.service_names():
        for name in catalogue[service]:
            if name == "id_token":  # each forgery of the provider is a situation of its own
                unset |= {(service, f"id_token={f}") for f in faults.ID_TOKEN_FAULTS if (service, name, f) not in done}
            elif name == "userinfo_signed":
                unset |= {(service, f"userinfo_signed={v}") for v in faults.USERINFO_SIGNED
                          if (service, name, v) not in done}
            elif not any(s == service and n == name for s, n, _ in done):
                unset.add((service, name))
    assert unset == set(NOT_SET_BY_A_SCENARIO), {
        "set by no scenario, no reason given": sorted(unset - set(NOT_SET_BY_A_SCENARIO)),
        "said unset but a scenario sets it (or no such fault)": sorted(set(NOT_SET_BY_A_SCENARIO) - unset)}
    assert all(len(why) > 40 for why in NOT_SET_BY_A_SCENARIO.values())
