"""RefApp's driver: JSON-RPC 2.0, one object per line on stdin/stdout (protocol usine.driver/1).

It declares ``reuse`` in vendor.toml: after a scenario the harness sends ``reset`` and the same process serves the
next one. Everything RefApp knows of a session lives in its :class:`~refapp.app.Application` (configuration,
the logged-in practitioner and tokens, local records, documents) and in the session's log file: ``reset`` drops the
one and closes the other, so the next ``initialize`` starts from nothing, as a new process would.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from refapp.app import Application

#: modules that register actions
MODULES = ("refapp.login", "refapp.identity", "refapp.security", "refapp.documents", "refapp.messaging",
           "refapp.directory", "refapp.logs")


def answer(rid: Any, result: Any = None, error: dict[str, Any] | None = None) -> None:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid}
    if error is not None:
        msg["error"] = error
    else:
        msg["result"] = result
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def without_httpx_cli() -> None:
    """httpx imports its command-line tool (rich, click, pygments) whenever they are installed; RefApp never runs it.
    A None entry in ``sys.modules`` makes that import fail and httpx goes without: a quarter of the driver's start-up,
    in every scenario. Before anything imports httpx."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # None there is Python's "no such module"


def main() -> int:
    without_httpx_cli()
    from refapp import __version__, defects, logs
    from refapp.actions import ACTIONS
    from refapp.app import Application
    from refapp.context import Context

    for name in MODULES:
        importlib.import_module(name)
    defects.check_environment()
    app: Application | None = None
    for line in sys.stdin:
        try:
            msg = json.loads(line)
            rid, method, params = msg["id"], msg["method"], msg.get("params", {})
        except (ValueError, KeyError, TypeError):
            answer(None, error={"code": -32700, "message": "parse error"})
            continue
        try:
            if method == "initialize":
                app = Application(Context.from_initialize(params))
                logs.start(app.ctx.session_id)
                answer(rid, {"software": {"name": "RefApp", "version": __version__}, "actions": sorted(ACTIONS)})
            elif method == "perform":
                if app is None:
                    answer(rid, error={"code": -32002, "message": "perform before initialize"})
                elif params.get("action") not in ACTIONS:
                    answer(rid, error={"code": -32601, "message": f"unsupported action {params.get('action')!r}"})
                else:
                    answer(rid, ACTIONS[params["action"]](app, params.get("input", {})))
            elif method == "reset":
                app = None
                logs.stop()
                sys.stderr.write(str(params.get("marker", "")) + "\n")  # what follows belongs to the next scenario
                sys.stderr.flush()
                answer(rid, {"fresh": True})
            elif method == "shutdown":
                answer(rid, None)
                return 0
            else:
                answer(rid, error={"code": -32601, "message": f"unknown method {method!r}"})
        except Exception as exc:  # the driver reports, the harness judges
            traceback.print_exc(file=sys.stderr)
            answer(rid, error={"code": -32000, "message": f"{type(exc).__name__}: {exc}"[:500]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
