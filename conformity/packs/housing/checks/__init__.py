"""The housing pack's checks, one module per referential area (importing this package registers them)."""

from conformity.packs.housing.checks import auth, consent, dpe, identifiers, security, works

__all__ = ["auth", "consent", "dpe", "identifiers", "security", "works"]
