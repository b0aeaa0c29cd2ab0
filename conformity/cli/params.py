"""Parameter types shared by every command: one parser, one error message for each kind of value."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import click

from conformity.labels import parse_time


class Rfc3339(click.ParamType):  # type: ignore[type-arg]  # generic in recent click only (pyproject allows 8.1)
    """An RFC 3339 time with its zone (``Z`` or an offset), as an aware datetime; a bad one is a usage error (exit
    2) naming the option."""

    name = "RFC3339"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        try:
            return parse_time(str(value))
        except ValueError as exc:
            self.fail(f"{value!r} is not an RFC 3339 time with a zone, e.g. 2027-06-30T23:59:59Z ({exc})", param, ctx)


RFC3339 = Rfc3339()


def now_unless(when: dt.datetime | None) -> dt.datetime:
    """The time an option gave, or now (UTC)."""
    return when if when is not None else dt.datetime.now(dt.UTC)


class LedgerPath(click.Path):
    """The payment ledger's path (a SQLite file); a ``postgresql://`` URL is a usage error (exit 2) saying so. As a
    path, click made it ``postgresql:/USER:PASSWORD@HOST/DB``: a run paid into a new SQLite ledger in folders named
    after the URL, password included, and exited 0."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from conformity.db.connection import is_url, redact

        if isinstance(value, str) and is_url(value):
            self.fail(f"{redact(value)} is a PostgreSQL URL: the payment ledger is a SQLite file, give its path",
                      param, ctx)
        return super().convert(value, param, ctx)


class Seconds(click.FloatRange):
    """A number of seconds within ``[minimum, maximum]`` (``minimum``: 0 unless told); NaN (which compares false with
    every bound, so ``FloatRange`` lets it through) is a usage error too."""

    name = "seconds"

    def __init__(self, maximum: float, *, minimum: float = 0) -> None:
        super().__init__(minimum, maximum)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


class BearerToken(click.ParamType):  # type: ignore[type-arg]  # generic in recent click only (pyproject allows 8.1)
    """A bearer token as RFC 6750 §2.1 writes it in an ``Authorization`` header (``b64token``: letters, digits and
    ``-._~+/``, then ``=`` padding); anything else, which no header can carry (an accent, a space, a control
    character), is a usage error naming the option, never a traceback from the HTTP client."""

    name = "token"
    _FORM = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if not self._FORM.fullmatch(text) or len(text) > 4096:
            self.fail("is not a bearer token (RFC 6750: at most 4096 of letters, digits and -._~+/, then = padding): "
                      "copy it again as it was given, without quotes or spaces", param, ctx)
        return text


BEARER_TOKEN = BearerToken()


class Bound(click.IntRange):
    """A whole number within ``[minimum, maximum]`` that a server's bound is set to; outside (0, a negative number, an
    absurd one), a usage error (exit 2) naming the option, the range and ``why`` the range is what it is."""

    def __init__(self, minimum: int, maximum: int, why: str) -> None:
        super().__init__(minimum, maximum)
        self.why = why

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a whole number", param, ctx)
        if not self.min <= number <= self.max:  # type: ignore[operator]  # both set by __init__
            self.fail(f"{value} is not within {self.min:,}..{self.max:,}: {self.why}", param, ctx)
        return number
