"""What housing scenarios share: the provider's service name, logins of a role, homes and addresses by situation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformity.harness.scenario import Perform, ScenarioContext

PROVIDER = "proconnect"
LOGIN = "professional.login"


def professional(ctx: ScenarioContext, role: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in ctx.fixtures["professionals"] if p["role"] == role)
    return found


def login_as(role: str, name: str = "login") -> Perform:
    """Log the fixtures' professional of ``role`` in (the step every housing scenario starts with)."""
    return Perform(LOGIN, lambda ctx: {"login_hint": professional(ctx, role)["email"]}, name=name)


def address(ctx: ScenarioContext, situation: str) -> dict[str, Any]:
    found: dict[str, Any] = next(a for a in ctx.fixtures["addresses"] if a["situation"] == situation)
    return found


def home(ctx: ScenarioContext, index: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = ctx.fixtures["homes"][index]
    return found


def home_input(index: int, **extra: Any) -> Callable[[ScenarioContext], dict[str, Any]]:
    return lambda ctx: {"household": home(ctx, index)["fiscal_number"], **extra}
