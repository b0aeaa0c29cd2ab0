"""Scenarios: patient identity (PATIENTID) — look-ups of every kind in one session, and the service failing.

``patientid.lookups`` logs a practitioner in, then asks the software to look patients up: a single
match with and without a checked identity document (one typed as the operator would, with
diacritics and typographic apostrophes), no match (both ways), several matches, traits generated
by hypothesis (diacritics, ligatures, hyphens, apostrophes, compound and long names, edge birth
dates), the service unavailable, and single matches whose INS or OID is out of format. Each step
is named; checks find their evidence by step name and by the sandbox's answer to that step.

``patientid.service_failures`` makes the identity service fail each way a network can: 429, 503
without Retry-After, a connection reset, a reply never sent after the look-up, and an answer held until
the software gives up (at most 32 s, past the 30 s PATIENTID-011 allows); then a look-up that works.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from conformity.harness.scenario import Perform, ScenarioContext, SetFaults, Shrink, scenario, seeded_draw
from conformity.packs.health.scenarios import people

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

TRAIT_NAMES = ("birth_name", "first_names", "birth_date", "sex", "birth_place_code")
GENERATED = 4  # generated look-ups per run
CANDIDATES = 16  # hypothesis examples drawn, of which GENERATED are kept (chosen by the seeded RNG)

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéèêëàâäîïôöùûüÿçñãõœæßÉÈÊËÀÂÄÎÏÔÖÙÛÜŸÇÑŒÆ"
SEPARATORS = ("-", " - ", "- ", "'", "’", " ", "  ")
PARTICLES = ("d’", "D'", "O'", "de ", "De La ", "L’", "Mac ")
EDGE_DATES = (dt.date(1900, 1, 1), dt.date(1904, 2, 29), dt.date(2000, 2, 29), dt.date(1999, 12, 31),
              dt.date(2024, 2, 29), dt.date(2025, 12, 31))
PLACES = ("75056", "2A004", "2B033", "97411", "99134", "99352", "01001")


BACKEND = "usine-seeded"


def seeded_backend() -> str:
    """Register (once) and name Hypothesis' own provider minus the constants it harvests from loaded modules.

    Those constants make the examples depend on the process (pytest, CLI, plugins), not only on the
    seed; without them the same seed draws the same examples everywhere (DESIGN principle 7).
    """
    from hypothesis.internal.conjecture.providers import AVAILABLE_PROVIDERS, HypothesisProvider

    class SeededProvider(HypothesisProvider):
        def _maybe_draw_constant(self, *args: Any, **kwargs: Any) -> None:
            return None

    AVAILABLE_PROVIDERS.setdefault(BACKEND, SeededProvider)
    return BACKEND


def name_strategy(max_parts: int) -> SearchStrategy[str]:
    """A name as an operator may type it: parts joined by hyphens, apostrophes or spaces, maybe a particle."""
    from hypothesis import strategies as st

    part = st.text(alphabet=LETTERS, min_size=1, max_size=14)

    @st.composite
    def build(draw: st.DrawFn) -> str:
        parts = draw(st.lists(part, min_size=1, max_size=max_parts))
        text = parts[0]
        for p in parts[1:]:
            text += draw(st.sampled_from(SEPARATORS)) + p
        if draw(st.booleans()):
            text = draw(st.sampled_from(PARTICLES)) + text
        return text[:60]

    return build()


def traits_strategy() -> SearchStrategy[dict[str, Any]]:
    """The five strict traits, typed (before normalisation)."""
    from hypothesis import strategies as st

    dates = st.one_of(st.sampled_from(EDGE_DATES), st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31)))
    return st.fixed_dictionaries({
        "birth_name": name_strategy(4),
        "first_names": name_strategy(3),
        "birth_date": dates.map(dt.date.isoformat),
        "sex": st.sampled_from(("M", "F", "U")),
        "birth_place_code": st.sampled_from(PLACES),
    })


@seeded_draw
def generated_traits(seed: int) -> list[dict[str, Any]]:
    """CANDIDATES hypothesis examples drawn deterministically from ``seed`` (a scenario's; no database)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    drawn: list[dict[str, Any]] = []

    @hypothesis_seed(seed % (2**32))
    @settings(database=None, max_examples=CANDIDATES, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck), derandomize=False, backend=seeded_backend())
    @given(traits_strategy())
    def collect(traits: dict[str, Any]) -> None:
        if traits not in drawn:
            drawn.append(traits)

    collect()
    return drawn


def generated(index: int) -> Any:
    """The input of generated look-up ``index``: drawn once per context, recorded in the step input."""

    def make(ctx: ScenarioContext) -> dict[str, Any]:
        if "generated_traits" not in ctx.outputs:
            pool = generated_traits(ctx.seed)
            ctx.outputs["generated_traits"] = ctx.rng.sample(pool, min(GENERATED, len(pool)))
        examples = ctx.outputs["generated_traits"]
        return dict(examples[index % len(examples)]) | {"identity_document_checked": False}

    return make


def registered(scenario_name: str, index: int, document: bool) -> Any:
    """Look-up input: a registry patient's traits exactly as registered (already normalised)."""

    def make(ctx: ScenarioContext) -> dict[str, Any]:
        traits = people.patient(ctx, scenario_name, index)["registered_traits"]
        return {k: traits[k] for k in TRAIT_NAMES} | {"identity_document_checked": document}

    return make


def typed(scenario_name: str, index: int, document: bool) -> Any:
    """Look-up input: a patient's local traits as an operator types them (case, apostrophes, spaces)."""

    def make(ctx: ScenarioContext) -> dict[str, Any]:
        traits = dict(people.patient(ctx, scenario_name, index)["traits"])
        for name in ("birth_name", "first_names"):
            text = traits[name].replace("'", "’").replace("-", " - ")
            traits[name] = text.lower() if ctx.rng.random() < 0.5 else text.title()
        return {k: traits[k] for k in TRAIT_NAMES} | {"identity_document_checked": document}

    return make


def login(ctx: ScenarioContext) -> dict[str, Any]:
    return {"login_hint": people.practitioner(ctx, 0)["national_id"]}


LOOKUPS = scenario(
    "patientid.lookups",
    "Patient look-ups: single match, no match, several matches, generated traits, service errors",
    Perform("practitioner.login", login, name="login"),
    Perform("patient.lookup", registered("match", 0, True), name="match_document"),
    Perform("patient.lookup", typed("match", 1, False), name="match_typed"),
    Perform("patient.lookup", registered("absent", 0, True), name="no_match_document"),
    Perform("patient.lookup", registered("absent", 0, False), name="no_match"),
    Perform("patient.lookup", registered("multiple", 0, True), name="several_document"),
    *(Perform("patient.lookup", generated(i), name=f"generated_{i + 1}") for i in range(GENERATED)),
    Shrink("patient.lookup", after="generated_", service="insi", outcome="traits-not-normalised",
           fields=("birth_name", "first_names")),
    SetFaults({"insi": {"unavailable": 5}}),
    Perform("patient.lookup", registered("match", 2, True), name="service_unavailable"),
    SetFaults({"insi": {"ins": "short_ins"}}),
    Perform("patient.lookup", registered("match", 3, True), name="short_ins"),
    SetFaults({"insi": {"ins": "wrong_oid"}}),
    Perform("patient.lookup", registered("match", 4, True), name="wrong_oid"),
    SetFaults({"insi": None}),
    draws=(generated_traits,),
)


FAILURES = scenario(
    "patientid.service_failures",
    "Look-ups the identity service answers 429 or 503 without Retry-After, or never answers: connection reset, "
    "reply never sent, answer held past the software's timeout",
    Perform("practitioner.login", login, name="login"),
    SetFaults({"insi": {"rate_limited": 1}}),
    Perform("patient.lookup", registered("match", 0, True), name="rate_limited"),
    SetFaults({"insi": {"unavailable": 1, "omit_retry_after": True}}),
    Perform("patient.lookup", registered("match", 1, True), name="unavailable_no_retry_after"),
    SetFaults({"insi": {"reset": 1}}),
    Perform("patient.lookup", registered("match", 2, True), name="connection_reset"),
    SetFaults({"insi": {"dropped_replies": 1}}),
    Perform("patient.lookup", registered("match", 3, True), name="reply_dropped"),
    SetFaults({"insi": {"stall": 1}}),
    Perform("patient.lookup", registered("match", 4, True), name="no_answer"),
    SetFaults({"insi": None}),
    Perform("patient.lookup", registered("match", 0, True), name="control"),
    # the held answer lasts as long as the software waits (the reference: 2 s), the rest is a login and look-ups
    expected_seconds=3.0,
)
