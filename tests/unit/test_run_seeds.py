"""Run seeds: the sandbox's 128 bits, committed to, and held exactly by every document that records them."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.catalog.schema import schema_problems
from conformity.runs import JCS_MAX_INT, MAX_RUN_SEED, canonical_seed, scenario_seed, seed_commitment
from conformity.signing import canonical_json


@settings(derandomize=True, max_examples=200)
@given(st.integers(min_value=0, max_value=MAX_RUN_SEED))
def test_a_run_seed_is_exact_in_canonical_json_and_the_label_schema(seed: int) -> None:
    """A 128-bit seed is beyond what RFC 8785 holds exactly (2**53 - 1): a label (canonical JSON, signed) carries
    it as its decimal digits, a smaller one as the integer; either reads back as the seed, and the schema takes it."""
    value = canonical_seed(seed)
    assert isinstance(value, int) == (seed <= JCS_MAX_INT) and int(value) == seed
    canonical_json({"seed": value})  # no SignatureError
    run = {"id": "run_" + "a" * 16, "seed": value, "harness": "1", "submission": "sub_" + "0" * 20}
    assert not [p for p in schema_problems("label", {"run": run}, "label.json") if p.where.startswith("run")]


def test_the_commitment_is_a_hash_of_the_seed_and_scenario_seeds_fit_a_trace() -> None:
    seed = MAX_RUN_SEED
    assert seed_commitment(seed) == hashlib.sha256(f"usine.run-seed:{seed}".encode()).hexdigest()
    assert seed_commitment(seed) != seed_commitment(seed - 1)
    assert 0 <= scenario_seed(seed, "INSI-001") <= JCS_MAX_INT  # 48 bits: the trace's canonical JSON holds it
