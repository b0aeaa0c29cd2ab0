"""Each agency command of README's exit-code table says its exit codes in its own --help, as README lists them."""

from __future__ import annotations

import pytest

from tests.agency.helpers import usine

#: (command, the codes README's table gives it, as --help words them)
TABLE = [
    (("agency", "verify"), ("Exit 0 verified", "1 refused", "2 unreadable input")),
    (("agency", "decide"), ("Exit 0 labelled", "1 refused", "2 unreadable input", "3 revoked", "4 pending")),
    (("agency", "review"), ("Exit 0 recorded", "2 refused (nothing recorded)")),
    (("agency", "evidence"), ("Exit 0 written", "2 refused (nothing written")),
    (("agency", "registry", "revoke"), ("Exit 0 revoked", "2 unknown label or already revoked")),
    (("agency", "registry", "reinstate"), ("Exit 0 reinstated", "2 unknown label")),
    (("label", "verify"), ("Exit 0 valid", "1 invalid", "2 unreadable input", "3 revocation status unknown",
                           "4 revocation list stale")),
]


@pytest.mark.parametrize(("command", "codes"), TABLE, ids=[" ".join(c) for c, _ in TABLE])
def test_the_help_gives_the_exit_codes_of_the_readme_table(command: tuple[str, ...], codes: tuple[str, ...]) -> None:
    result = usine(*command, "--help")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    missing = [c for c in codes if c not in text]
    assert not missing, f"usine {' '.join(command)} --help lacks {missing}: {text}"
