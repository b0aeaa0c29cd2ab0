"""HomeApp's driver: JSON-RPC 2.0, one object per line on stdin/stdout (protocol usine.driver/1)."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

from homeapp import __version__, buildings, consent, defects, dpe, login, works
from homeapp.context import App

ACTIONS: dict[str, Callable[[App, dict[str, Any]], dict[str, Any]]] = {
    "professional.login": lambda app, data: login.login(app, data["login_hint"]),
    "building.identify": buildings.identify,
    "dpe.file": dpe.file_dpe,
    "consent.request": consent.request_consent,
    "home.read": consent.read,
    "consent.revoke": consent.revoke,
    "consumption.transfer": consent.transfer,
    "quote.send": works.send_quote,
    "works.record": works.record_works,
}


def answer(rid: Any, result: Any = None, error: dict[str, Any] | None = None) -> None:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid}
    msg |= {"error": error} if error is not None else {"result": result}
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main() -> int:
    defects.check_environment()
    app: App | None = None
    for line in sys.stdin:
        try:
            msg = json.loads(line)
            rid, method, params = msg["id"], msg["method"], msg.get("params", {})
        except (ValueError, KeyError, TypeError):
            answer(None, error={"code": -32700, "message": "parse error"})
            continue
        try:
            if method == "initialize":
                app = App.from_initialize(params)
                answer(rid, {"software": {"name": "HomeApp", "version": __version__}, "actions": sorted(ACTIONS)})
            elif method == "perform":
                if app is None:
                    answer(rid, error={"code": -32002, "message": "perform before initialize"})
                elif params.get("action") not in ACTIONS:
                    answer(rid, error={"code": -32601, "message": f"unsupported action {params.get('action')!r}"})
                else:
                    answer(rid, ACTIONS[params["action"]](app, params.get("input", {})))
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
