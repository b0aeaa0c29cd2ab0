"""SECURITY-006: a patient's value is personal data in a URL where it is a value, not where a random protocol value
happens to spell it (a reference run of the CI failed: its authorization request's random ``state`` held ``NOEL``,
a fixture patient's first name)."""

from __future__ import annotations

import pytest

from conformity.checks.helpers import as_token


@pytest.mark.parametrize(("text", "found"), [
    ('?{"state": ["WYcSYArVjYskRNOELF4BiMcRrEMHmd"]}', False),
    ("/patients/NOELLE", False),
    ('?{"name": ["NOEL"]}', True),
    ("/patients/NOEL/documents", True),
    ("NOEL", True),
    ("xNOEL NOEL", True),
    ("NOEL1 2NOEL", False),
])
def test_security_006_a_value_counts_as_a_whole_token(text: str, found: bool) -> None:
    assert as_token("NOEL", text) is found
