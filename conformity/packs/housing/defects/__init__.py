"""The housing pack's trace mutations: one realistic defect each, written as a change to a copy of the reference
run's traces, with exactly the automated MUST and SHOULD requirements it breaks (``tests/packs/housing`` proves each)."""

from conformity.packs.housing.defects import auth, consent, dpe, identifiers, security, works  # noqa: F401
