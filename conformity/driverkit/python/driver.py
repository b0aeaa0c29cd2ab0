"""usine driver (protocol usine.driver/1): JSON-RPC 2.0, one object a line on stdin (requests) and stdout (answers).

Written by ``usine driver init``. You should not need to change this file: implement your actions in actions.py.
Never write anything else on stdout (no print!): the harness reads every stdout line as an answer. Log to
stderr (``logging`` does by default): its last lines are kept as evidence when something goes wrong.

With ``reuse = true`` in vendor.toml one process serves scenario after scenario: between two, the harness sends
``reset`` and this file calls your ``actions.reset()``, which must forget everything of the session that ended.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

import actions

NOT_IMPLEMENTED = -32001  # the action is declared but your driver does not do it yet


def answer(rid: Any, result: Any = None, error: dict[str, Any] | None = None) -> None:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid}
    msg.update({"error": error} if error is not None else {"result": result})
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main() -> int:
    context: dict[str, Any] | None = None  # what initialize gave: endpoints, credentials, trust anchors, fixtures
    for line in sys.stdin:
        try:
            msg = json.loads(line)
            rid, method, params = msg["id"], msg["method"], msg.get("params") or {}
        except (ValueError, KeyError, TypeError):
            answer(None, error={"code": -32700, "message": "parse error"})
            continue
        if method == "initialize":
            context = params
            actions.initialize(context)
            answer(rid, {"software": {"name": params["software"]["name"], "version": params["software"]["version"]},
                         "actions": sorted(actions.ACTIONS)})
        elif method == "perform":
            handler = actions.ACTIONS.get(params.get("action"))
            if context is None:
                answer(rid, error={"code": -32002, "message": "perform before initialize"})
            elif handler is None:
                answer(rid, error={"code": -32601, "message": f"unsupported action {params.get('action')!r}"})
            else:
                try:
                    answer(rid, handler(params.get("input") or {}, context))
                except NotImplementedError as exc:
                    answer(rid, error={"code": NOT_IMPLEMENTED, "message": str(exc)})
                except Exception as exc:  # the driver reports, the harness judges
                    traceback.print_exc(file=sys.stderr)
                    answer(rid, error={"code": -32000, "message": f"{type(exc).__name__}: {exc}"[:500]})
        elif method == "reset":  # only sent when vendor.toml says reuse = true
            context = None
            reset = getattr(actions, "reset", None)
            if reset is None:
                answer(rid, error={"code": NOT_IMPLEMENTED, "message": "actions.py has no reset(): one process per "
                                                                       "scenario"})
                continue
            try:
                reset()
            except NotImplementedError as exc:
                answer(rid, error={"code": NOT_IMPLEMENTED, "message": str(exc)})
                continue
            except Exception as exc:  # not fresh: the harness starts a new process for the next scenario
                traceback.print_exc(file=sys.stderr)
                answer(rid, error={"code": -32000, "message": f"reset failed: {type(exc).__name__}: {exc}"[:500]})
                continue
            # the harness's marker on stderr: what you logged before it belongs to the scenario that ended
            sys.stderr.write(str(params.get("marker", "")) + "\n")
            sys.stderr.flush()
            answer(rid, {"fresh": True})
        elif method == "shutdown":
            answer(rid, None)
            return 0
        else:
            answer(rid, error={"code": -32601, "message": f"unknown method {method!r}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
