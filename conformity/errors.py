"""The one place for usine's error types.

Exception tree::

    UsineError                  every error usine raises on purpose
    ├── InputError              bad input from a user or file; exit code 2; carries Problems
    │   ├── CatalogError        referentials, waves, packs: load or cross-check failed
    │   ├── XMLSecurityError    XML refused before or while parsing (DTD, entities, size, depth)
    │   └── SignatureError      a signature, key or signed document does not verify
    ├── LedgerBusy              (conformity.payments.lease) another run holds the ledger; exit code 3
    └── RevocationsNotFresh     no revocation list, or a stale one: a payment run will not start; exit code 4

A :class:`Problem` says what is wrong, where (file and key path or line) and why; an
:class:`InputError` carries all the problems found, not only the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXIT_INPUT = 2
EXIT_LEDGER_BUSY = 3
EXIT_REVOCATIONS = 4


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one input: the file, where in it, and what."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        if not self.file:
            return f"{self.where}: {self.message}" if self.where else self.message
        where = f" at {self.where}" if self.where else ""
        return f"{self.file}{where}: {self.message}"


class UsineError(Exception):
    """Base of every error usine raises on purpose."""

    exit_code = 1


class InputError(UsineError):
    """Bad input: one or more problems, each with its file and location."""

    exit_code = EXIT_INPUT

    def __init__(self, problems: list[Problem] | Problem | str, *, file: str | Path = "", where: str = ""):
        if isinstance(problems, str):
            problems = [Problem(str(file), where, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems:"] + [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class CatalogError(InputError):
    """The catalog (packs, referentials, waves) did not load or cross-check."""


class XMLSecurityError(InputError):
    """XML refused: DTD or entity declarations, too large, too deep, or not well-formed."""


class SignatureError(InputError):
    """A signature, key or signed document does not verify."""


class RevocationsNotFresh(UsineError):
    """No revocation list, or one whose ``next_update`` has passed: relying on it could pay revoked software."""

    exit_code = EXIT_REVOCATIONS
