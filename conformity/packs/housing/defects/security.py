"""Trace mutations: the shared security baseline (BASELINE)."""

from __future__ import annotations

from conformity.defects.edit import TraceEdit
from conformity.packs.housing.defects.common import mutation
from conformity.packs.housing.scenarios.identifiers import IDENTIFY
from conformity.packs.housing.scenarios.security import UNTRUSTED

CATEGORY = "DIAGNOSTICIAN"


@mutation(
    "talks-to-self-signed", scenario=UNTRUSTED.id, breaks=["BASELINE-001"], category=CATEGORY, where="request.path"
)
def talks_to_self_signed(t: TraceEdit) -> float:
    """The software completes the handshake with the self-signed geocoder and sends its search."""
    note = t.step("self_signed")
    agent = next(e for e in t.exchanges("proconnect")).request_headers().get("user-agent", "")
    sid = t.doc.get("session", {}).get("id", "ses")
    raw = {
        "kind": "http",
        "seq": note.seq - 0.5,
        "time": t.exchanges("proconnect")[-1].raw["time"],
        "service": "geocoder",
        "request": {
            "method": "GET",
            "path": f"/s/{sid}/geocoder/search",
            "query": {"q": [str(note.data["input"]["address"])]},
            "headers": {"user-agent": agent},
            "auth": None,
            "body": {},
        },
        "response": {"status": 200, "headers": {}, "body": {"json": {"type": "FeatureCollection", "features": []}}},
        "outcome": "geocoded-nothing",
        "duration_ms": 1.0,
    }
    seq = t.insert(raw)
    note.raw["data"]["output"] = {"status": "no_result"}
    return seq


@mutation(
    "search-without-user-agent",
    scenario=IDENTIFY.id,
    breaks=["BASELINE-002"],
    category=CATEGORY,
    where="request.headers.user-agent",
)
def search_without_user_agent(t: TraceEdit) -> int:
    """The software's geocoder client sends its library's User-Agent."""
    e = t.exchanges("geocoder")[0]
    e.raw["request"]["headers"]["user-agent"] = "python-httpx/0.27"
    return e.seq


@mutation(
    "logs-access-token", scenario=UNTRUSTED.id, breaks=["BASELINE-003"], category=CATEGORY, where="software.output"
)
def logs_access_token(t: TraceEdit) -> float:
    """The software writes the access token it received on its error output."""
    end = next(n for n in t.view.notes("scenario.end"))
    raw = {
        "kind": "note",
        "seq": end.seq - 0.5,
        "note": "software.output",
        "data": {"stderr": "debug: access token [redacted sha256:0123456789abcdef]"},
    }
    return t.insert(raw)


@mutation(
    "search-user-agent-build-version",
    scenario=IDENTIFY.id,
    breaks=["BASELINE-002"],
    category=CATEGORY,
    where="request.headers.user-agent",
)
def search_user_agent_build_version(t: TraceEdit) -> int:
    """The software's geocoder client announces its build number after the version (HomeApp/1.0.0.4711): another
    version than the one submitted."""
    e = t.exchanges("geocoder")[0]
    headers = e.raw["request"]["headers"]
    name_version, _, rest = headers["user-agent"].partition(" ")
    headers["user-agent"] = f"{name_version}.4711 {rest}"
    return e.seq
