"""Credentials before bodies: a route class whose requests are authenticated before FastAPI reads their body.

FastAPI parses a route's declared JSON body before it solves any dependency: a request without credentials and with
a malformed body was answered 400 ``json-malformed`` (or 415) rather than 401, so an unauthenticated caller learnt how
the API parses and made the sandbox parse for it. A router made with ``route_class=auth_first(check)`` runs
``check(request)`` (an authentication dependency: it raises the 401/403 problem) before anything else of the route;
what it returns is left in the request's state (:data:`AUTHENTICATED`) for the route's own dependency to take rather
than read the store again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

#: where the route leaves what its check returned (request.state), keyed by the check
AUTHENTICATED = "usine_authenticated"

Check = Callable[[Request], Awaitable[Any]]


def authenticated(request: Request, check: Check) -> tuple[bool, Any]:
    """What ``check`` returned for this request when an :func:`auth_first` route ran it: (True, value), else
    (False, None)."""
    found = request.scope.get("state", {}).get(AUTHENTICATED)
    if found is not None and found[0] is check:
        return True, found[1]
    return False, None


class AuthFirstRoute(APIRoute):
    """An :class:`APIRoute` whose handler runs :attr:`check` first (see the module)."""

    check: Check

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        check = type(self).check

        async def authenticated_first(request: Request) -> Response:
            value = await check(request)
            request.scope.setdefault("state", {})[AUTHENTICATED] = (check, value)
            return await handler(request)

        return authenticated_first


def auth_first(check: Check) -> type[APIRoute]:
    """The route class of a router whose every route authenticates with ``check(request)`` before its body is read."""
    return type(f"AuthFirst_{getattr(check, '__name__', 'check')}", (AuthFirstRoute,), {"check": staticmethod(check)})
