"""The one place for usine's error types, and the map of every other exception class usine defines.

Exception tree (every exception class of the core, ``conformity/`` and ``sandbox/`` outside their ``packs/``;
``tests/unit/test_errors.py`` holds this tree to the code: a class missing here, or named here and gone, fails it)::

    Exception
    ├── UsineError                  every error usine raises on purpose; a command exits with its exit_code (1)
    │   ├── InputError              bad input from a user or file; exit code 2; carries Problems
    │   │   ├── CatalogError        referentials, waves, packs: load or cross-check failed
    │   │   ├── XMLSecurityError    XML refused before or while parsing (DTD, entities, size, depth)
    │   │   ├── SignatureError      a signature, key or signed document does not verify
    │   │   ├── FileChanged         (conformity.payments.authenticate) an events file changed while being read
    │   │   └── IdpKeyError         (sandbox.oidc_keys) the provider's key file exists but cannot be used
    │   ├── LedgerBusy              (conformity.payments.lease) another run holds the ledger; exit code 3
    │   ├── RevocationsNotFresh     no revocation list, a stale one or an older one: a payment run will not start; exit 4
    │   └── SandboxUnavailable      (conformity.harness.sandbox_access) the sandbox could not be started or reached
    │
    │   signals caught where they are raised (never a command's exit):
    ├── MissingEvidence             (conformity.checks.model) a trace lacks what a check needs: not-exercised
    │                               (or fail, for a check decorated with conformity.checks.guards.missing_fails)
    ├── DriverFailure               (conformity.harness.driver) the vendor's driver crashed, timed out or answered
    │                               garbage: recorded in the trace, the steps resting on it are in error
    ├── UsineFailure                (conformity.pytest_plugin) a requirement item's verdict, as a pytest failure
    │
    │   HTTP answers of the two web services (each turned into its error document by the service's handlers):
    ├── HTTPProblem                 (conformity.http_problems) an RFC 9457 problem the sandbox's services and the
    │                               agency service answer, each under its own type namespace
    ├── OAuthError                  (sandbox.services.idp) an RFC 6749 error the OpenID Connect provider answers
    ├── RunStopped                  (conformity.agency.service.witnessed) a witnessed run went past its time bound
    ├── AddressRefused              (conformity.agency.service.witnessed) a driver's host resolves to an address the
    │                               agency does not call (a 422 at the request, a driver failure during the run)
    ├── BoundReached                (sandbox.store) a vendor's live sessions, runs or recorded bytes at their bound:
    │                               nothing written (a 429 of the admin API)
    ├── SessionGone                 (sandbox.store) a test session swept before its exchange or note was written:
    │                               nothing written (the request unrecorded, a note 404)
    ├── LoginRequired               (conformity.agency.service.deps) a staff page without a signed-in person
    ├── PasswordChangeRequired      (conformity.agency.service.deps) a page of a session whose password an admin set
    │
    │   a built-in base, for the code that catches it as such:
    └── ValueError
        └── DuplicateMember         (sandbox.parsed) a JSON body names a member twice: a 400 duplicate-member, the
                                    body recorded as sent

A sector pack's own exceptions live in the pack (the core names no pack) and follow the same rule: one raised on
purpose at a user derives from UsineError or InputError.

A :class:`Problem` (here) says what is wrong, where (file and key path or line) and why; an
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

    def what(self) -> str:
        """What is wrong, without the file (for a message that names the input itself): "why (where); ..."."""
        return "; ".join(p.message + (f" ({p.where})" if p.where else "") for p in self.problems)


class CatalogError(InputError):
    """The catalog (packs, referentials, waves) did not load or cross-check."""


class XMLSecurityError(InputError):
    """XML refused: DTD or entity declarations, too large, too deep, or not well-formed."""


class SignatureError(InputError):
    """A signature, key or signed document does not verify."""


class RevocationsNotFresh(UsineError):
    """No revocation list, or one whose ``next_update`` has passed: relying on it could pay revoked software."""

    exit_code = EXIT_REVOCATIONS
