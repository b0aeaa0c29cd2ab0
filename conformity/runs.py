"""A run as the sandbox issues it: its id, and each scenario's seed derived from the run's.

One place for what both sides compute: the sandbox (the seed of a session it opens for a scenario of a run), the
harness (the seed it hands the driver) and the agency (the seed a trace's session must have).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

#: a run id as the sandbox makes it (``run_`` and 16 letters or digits)
RUN_ID_PATTERN = r"^run_[A-Za-z0-9]{16}$"
#: who chose a run's seed: the sandbox drew it, or the caller gave it (a vendor reproducing a run)
SeedSource = Literal["sandbox", "caller"]
SEED_SOURCES: tuple[SeedSource, ...] = ("sandbox", "caller")
#: the bits of a run seed the sandbox draws: a secret while the run is open, so that neither a scenario's seed (48 bits
#: of SHA-256 of the run seed and the scenario id) nor the run's commitment (:func:`seed_commitment`) lets anyone find
#: it by trying seeds (2**53 seeds, those of the first runs, are days of one GPU's hashing; 2**128 are out of reach)
SANDBOX_SEED_BITS = 128
SANDBOX_SEED_BOUND = 2**SANDBOX_SEED_BITS
#: the largest run seed (``usine run --seed``'s bound): any seed the sandbox draws, to reproduce its run
MAX_RUN_SEED = SANDBOX_SEED_BOUND - 1
#: the largest integer RFC 8785 (I-JSON) holds exactly: a larger seed is a decimal string in a canonical document
JCS_MAX_INT = 2**53 - 1


def scenario_seed(run_seed: int, scenario_id: str) -> int:
    """Each scenario's seed: a pure function of the run seed and the scenario id."""
    return int(hashlib.sha256(f"{run_seed}:{scenario_id}".encode()).hexdigest()[:12], 16)


def seed_commitment(run_seed: int) -> str:
    """What the sandbox commits to when it issues a run, signed in every trace of it from the start (the session's
    ``run``): the SHA-256 (hex) of the run seed, which the seed revealed when the run is finished must match. It
    shows the manifest's seed is the one the sandbox drew, and (the seed 128 random bits) says nothing of it before."""
    return hashlib.sha256(f"usine.run-seed:{run_seed}".encode()).hexdigest()


def canonical_seed(run_seed: int) -> int | str:
    """A run seed as a canonical (RFC 8785) document holds it: the integer when I-JSON holds it exactly, else its
    decimal digits (a seed the sandbox draws has 128 bits)."""
    return run_seed if run_seed <= JCS_MAX_INT else str(run_seed)


def read_seed(value: object) -> int:
    """A run seed as a report, a bundle manifest or a label holds it: an integer, or (above :data:`JCS_MAX_INT`, as
    :func:`canonical_seed` writes it) its decimal digits; ValueError for anything else or out of 0..MAX_RUN_SEED.
    Both forms are read: bundles of earlier harnesses hold every seed as a number."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and (value == "0" or value[0] != "0"):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ValueError(f"{value!r} is not a run seed (an integer, or its decimal digits as a string)")
    if not 0 <= number <= MAX_RUN_SEED:
        raise ValueError(f"run seed {number} is not in the range 0 to 2**{SANDBOX_SEED_BITS} - 1")
    return number


def new_run_id() -> str:
    """A new run id (:data:`RUN_ID_PATTERN`): 16 random letters and digits after ``run_``."""
    return "run_" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
