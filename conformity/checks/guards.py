"""What every check shares around its rule: guard decorators and a findings accumulator.

A check is a pure function of a trace (or a run) and the evaluation context (:data:`~conformity.checks.registry.
CheckFn`). Around its rule, the same two things recur in every pack:

* a **guard**: the check cannot conclude unless something happened (a login, a step of the scenario); the guard
  says what is missing as a finding, and the check's verdict is then ``not-exercised`` (or, when a pack's rule says
  so, ``fail``) — :func:`guarded`, and :func:`missing_fails` for the helpers that raise
  :class:`~conformity.checks.model.MissingEvidence`;
* a **findings accumulator**: breaches and missing situations collected in order, then one verdict —
  :class:`Findings`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from conformity.checks.model import Finding, Missing, MissingEvidence, Status, Verdict, failed, judged, passed

if TYPE_CHECKING:
    from conformity.checks.evaluate import EvalContext

F = TypeVar("F", bound=Callable[..., Verdict])
#: a guard: the finding saying what the check needs and did not get, or None when it may go on
Guard = Callable[[Any, "EvalContext"], Finding | None]


def guarded(*guards: Guard, status: Status = "not-exercised") -> Callable[[F], F]:
    """Decorate a check: the first guard that names what is missing decides the verdict (``status``, with that
    finding); the check's rule runs only when every guard lets it."""

    def decorate(check: F) -> F:
        @functools.wraps(check)
        def run(subject: Any, ctx: EvalContext) -> Verdict:
            for guard in guards:
                finding = guard(subject, ctx)
                if finding is not None:
                    return Verdict(status, (finding,))
            return check(subject, ctx)

        return cast(F, run)  # functools.wraps keeps the name and doc; the signature is F's

    return decorate


def missing_fails(check: F) -> F:
    """Decorate a check whose referential says a situation it needs must happen: a helper's
    :class:`~conformity.checks.model.MissingEvidence` fails it with its finding (instead of not-exercised)."""

    @functools.wraps(check)
    def run(subject: Any, ctx: EvalContext) -> Verdict:
        try:
            return check(subject, ctx)
        except MissingEvidence as exc:
            return failed(exc.finding)

    return cast(F, run)  # functools.wraps keeps the name and doc; the signature is F's


class Findings(list[Finding]):
    """A check's findings in the order it found them, and the verdict they make."""

    def __init__(self, found: Iterable[Finding] = ()) -> None:
        super().__init__(found)

    def missing(self, message: str, **details: Any) -> None:
        """A situation the rule is about did not happen (not a breach)."""
        self.append(Missing(message, **details))

    def judged(self, passing: str) -> Verdict:
        """Any breach fails (on the breaches alone); else a missing situation leaves it not exercised; else pass."""
        return judged(list(self), passing)

    def verdict(self, passing: str) -> Verdict:
        """Strict: any finding, breach or missing situation, fails; else pass."""
        return failed(*self) if self else passed(passing)
