"""Vendor text made safe to show: what a driver answered, what the software sent, rendered visibly.

A driver's JSON-RPC error message, a finding quoting an answer or a header, can hold any character JSON can
escape: terminal escape sequences, NUL, a carriage return that rewrites the line, a lone surrogate, a bidi override
that reverses what follows. XML cannot hold most of them, a UTF-8 file cannot hold a lone surrogate, and a terminal
or a CI log obeys them. Every report writer passes such text through :func:`visible`: each of these characters is
written as its Python escape (``\\x1b``, ``\\ud800``); line feeds and tabs stay.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

#: C0 controls but tab and line feed, DEL and C1 controls, surrogates, XML's non-characters, bidi embeddings,
#: overrides and isolates
INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control, surrogate or bidi-control character written as its escape."""
    return INVISIBLE.sub(_escape, text)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def place(finding: Mapping[str, Any]) -> str:
    """Where in the trace a finding was seen: ``scenario S, exchange N, at PATH`` (what it holds of them)."""
    parts = [f"scenario {finding['scenario']}"] if finding.get("scenario") else []
    parts += [f"exchange {finding['exchange']}"] if finding.get("exchange") is not None else []
    parts += [f"at {finding['where']}"] if finding.get("where") else []
    return ", ".join(parts)


def expected_seen(finding: Mapping[str, Any]) -> str:
    """``expected X, got Y`` as JSON, each only when the finding holds it ("" when neither)."""
    parts = [f"expected {_json(finding['expected'])}"] if "expected" in finding else []
    parts += [f"got {_json(finding['got'])}"] if "got" in finding else []
    return ", ".join(parts)


def finding_text(finding: Mapping[str, Any]) -> str:
    """A finding as one line of plain text: message [where] — expected, got (vendor text made visible)."""
    text = str(finding.get("message", ""))
    where, seen = place(finding), expected_seen(finding)
    return visible(text + (f" [{where}]" if where else "") + (f" — {seen}" if seen else ""))
