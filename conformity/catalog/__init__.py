"""The catalog: domain packs, referentials, waves; loading, cross-checks, specifications and diffs."""

from __future__ import annotations

from conformity.catalog.catalog import Catalog, parse_ref
from conformity.catalog.loader import load_catalog
from conformity.catalog.models import (
    Action,
    AppliedRequirement,
    Funding,
    Pack,
    Proof,
    ProofOfUse,
    Referential,
    Requirement,
    Specification,
    Wave,
    WaveCategory,
)

__all__ = [
    "Action", "AppliedRequirement", "Catalog", "Funding", "Pack", "Proof", "ProofOfUse", "Referential",
    "Requirement", "Specification", "Wave", "WaveCategory", "load_catalog", "parse_ref",
]
