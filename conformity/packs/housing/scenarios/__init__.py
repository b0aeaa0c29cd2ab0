"""The housing pack's scenarios: what the harness asks the driver to do, and the faults the sandbox injects."""

from conformity.packs.housing.scenarios import auth, consent, dpe, identifiers, security, works

__all__ = ["auth", "consent", "dpe", "identifiers", "security", "works"]
