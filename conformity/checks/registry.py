"""The check registry: check id → the requirement ids it verifies → its evaluation.

Checks are plain functions registered with a decorator, schemathesis-style::

    @check("oidc.nonce_verified", verifies=["AUTH-007"])
    def nonce_verified(trace, ctx) -> Verdict: ...

Like Inferno's ``verifies_requirements``, each check declares the requirement ids it verifies;
the catalog cross-checks that every check id named by a requirement is registered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

if TYPE_CHECKING:  # the contract's types; these modules import the registry themselves
    from conformity.checks.evaluate import EvalContext
    from conformity.checks.model import Verdict
    from conformity.checks.trace import RunView, TraceView

T = TypeVar("T")
#: a check: a pure function of its scenario's trace (or of every trace of the run: ``reads``, ``reads_all``) and the
#: evaluation context, returning a Verdict (schemathesis' ``CheckFunction``)
CheckFn: TypeAlias = "Callable[[TraceView | RunView, EvalContext], Verdict]"


class Registry(Generic[T]):
    """A name → item registry that refuses duplicates."""

    def __init__(self, what: str):
        self._what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self._what} {name!r} is registered twice")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self._what} {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())


@dataclass(frozen=True, slots=True)
class Check:
    """A registered check: what it verifies and how it evaluates a recorded trace."""

    id: str
    verifies: tuple[str, ...]
    evaluate: CheckFn
    scenario: str | None = None
    description: str = ""
    tags: tuple[str, ...] = field(default=())
    #: the check's rule applies to every exchange of the run: it reads the traces of every planned scenario
    #: (``scenario`` is then the one the plan must run for it)
    reads_all: bool = False
    #: other scenarios whose traces the check reads besides ``scenario`` (the plan runs them too)
    reads: tuple[str, ...] = ()

    @property
    def scenarios(self) -> tuple[str, ...]:
        """The scenarios the plan must run for this check."""
        return tuple(dict.fromkeys(s for s in (self.scenario, *self.reads) if s))


CHECKS: Registry[Check] = Registry("check")


def check(check_id: str, *, verifies: list[str] | tuple[str, ...], scenario: str | None = None,
          tags: tuple[str, ...] = (), reads_all: bool = False,
          reads: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    # a check's own signature names its subject exactly (TraceView, or RunView with reads/reads_all): the decorator
    # takes any such function and stores it as the contract's CheckFn
    """Register ``func`` as the evaluation of check ``check_id``, verifying ``verifies``.

    ``func(trace, ctx)`` reads the trace of ``scenario``; with ``reads`` (more scenarios) or ``reads_all``
    (every scenario of the run), ``func(run, ctx)`` reads a :class:`~conformity.checks.trace.RunView`.
    """
    if not verifies:
        raise ValueError(f"check {check_id!r} must declare the requirement ids it verifies")

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        doc = (func.__doc__ or "").strip().splitlines()
        CHECKS.register(check_id, Check(check_id, tuple(verifies), func, scenario, doc[0] if doc else "", tags,
                                        reads_all, tuple(reads)))
        return func

    return decorate


def registered_check_ids() -> set[str]:
    return set(CHECKS)
