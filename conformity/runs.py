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
#: the largest run seed (``usine run --seed``'s bound); the sandbox draws its own below 2**53 (exact in any JSON)
MAX_RUN_SEED = 2**62
SANDBOX_SEED_BOUND = 2**53


def scenario_seed(run_seed: int, scenario_id: str) -> int:
    """Each scenario's seed: a pure function of the run seed and the scenario id."""
    return int(hashlib.sha256(f"{run_seed}:{scenario_id}".encode()).hexdigest()[:12], 16)


def new_run_id() -> str:
    """A new run id (:data:`RUN_ID_PATTERN`): 16 random letters and digits after ``run_``."""
    return "run_" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
