"""The admin API (admin token): sessions, faults, driver notes, traces, installations, events."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from sandbox.deps import get_session, require_admin, store_of, token_hash
from sandbox.faults import CATALOGUE, validate_faults
from sandbox.fixtures import generate
from sandbox.problems import Problem
from sandbox.sessions import create_session, new_id, public_view
from sandbox.traces import build_trace

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = Field(0, ge=0, le=2**53 - 1, description="Seed of the fixtures (and recorded in the trace, whose "
                      "canonical JSON holds integers up to 2**53 - 1).")
    label: str = Field("", max_length=200)
    patients: int = Field(6, ge=1, le=200, description="How many matchable patients to generate.")
    redirect_uris: list[str] = Field(default_factory=list, max_length=20)


class NoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(..., pattern=r"^[a-z][a-z0-9_.\-]*$", max_length=100)
    data: dict[str, Any] = Field(default_factory=dict)


class Software(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(..., min_length=1, max_length=100)
    name: str = Field(..., min_length=1, max_length=200)
    version: str = Field(..., min_length=1, max_length=50)
    registration_id: str = Field("", max_length=100)


class Site(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(..., min_length=1, max_length=50)
    size: str = Field(..., pattern=r"^[A-Z][A-Z0-9_]*$")
    name: str = Field("", max_length=200)


class InstallationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vendor_id: str = Field(..., min_length=1, max_length=100)
    software: Software
    site: Site
    wave: str = Field(..., pattern=r"^[0-9]{4}-W[0-9]+$")
    category: str = Field(..., pattern=r"^[A-Z][A-Z0-9_]*$")


@router.post("/sessions", status_code=201, summary="Create a test session")
def post_session(request: Request, body: SessionRequest) -> dict[str, Any]:
    fixtures = generate(body.seed, patients=body.patients)
    session = create_session(store_of(request), str(request.base_url), seed=body.seed, label=body.label,
                             fixtures=fixtures, redirect_uris=body.redirect_uris)
    return public_view(session)


@router.get("/sessions", summary="List test sessions")
def list_sessions(request: Request) -> dict[str, Any]:
    return {"sessions": [{"session_id": s["id"], "label": s["label"], "seed": s["seed"], "state": s["state"],
                          "created": s["created"]} for s in store_of(request).list_sessions()]}


@router.get("/sessions/{session_id}", summary="One test session")
def get_one(request: Request, session_id: str) -> dict[str, Any]:
    return public_view(get_session(request, session_id))


@router.get("/listeners", summary="The URLs this sandbox serves on (trusted, untrusted certificate, TLS 1.1 only)")
def listeners(request: Request) -> dict[str, Any]:
    return {"listeners": getattr(request.app.state, "listeners", {})}


@router.get("/faults", summary="The faults a session can inject")
def fault_catalogue() -> dict[str, Any]:
    return {"faults": CATALOGUE}


@router.put("/sessions/{session_id}/faults", summary="Set or clear injected faults")
def put_faults(request: Request, session_id: str, body: dict[str, Any]) -> dict[str, Any]:
    get_session(request, session_id)
    errors = validate_faults(body)
    if errors:
        raise Problem(422, "faults-invalid", "; ".join(errors))

    def change(session: dict[str, Any]) -> None:
        for service, spec in body.items():
            if spec:
                session["faults"][service] = spec
            else:
                session["faults"].pop(service, None)

    session = store_of(request).update_session(session_id, change)
    return {"faults": session["faults"] if session else {}}


@router.post("/sessions/{session_id}/notes", status_code=201, summary="Add a harness note to the trace")
def post_note(request: Request, session_id: str, body: NoteRequest) -> dict[str, Any]:
    get_session(request, session_id)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    seq = store_of(request).append_exchange(session_id, {"kind": "note", "time": now, "note": body.kind,
                                                         "data": body.data})
    return {"seq": seq}


@router.get("/sessions/{session_id}/trace", summary="Export the signed trace of a session")
def get_trace(request: Request, session_id: str) -> dict[str, Any]:
    session = store_of(request).get_session(session_id)
    if session is None:
        raise Problem(404, "session-unknown", f"no test session {session_id!r}")
    return build_trace(store_of(request), session, request.app.state.trace_key)


@router.post("/sessions/{session_id}/close", summary="Close a test session")
def close_session(request: Request, session_id: str) -> dict[str, Any]:
    get_session(request, session_id)
    session = store_of(request).update_session(session_id, lambda s: s.update(state="closed"))
    return {"session_id": session_id, "state": session["state"] if session else "closed"}


@router.post("/installations", status_code=201, summary="Register an installed software at a care site")
def post_installation(request: Request, body: InstallationRequest) -> dict[str, Any]:
    token = secrets.token_urlsafe(32)
    inst = {"id": new_id("ins"), "vendor_id": body.vendor_id, "software": body.software.model_dump(),
            "site": body.site.model_dump(), "wave": body.wave, "category": body.category, "state": "active",
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    store_of(request).put_installation(inst, token_hash(token))
    base = str(request.base_url).rstrip("/")
    return inst | {"token": token, "endpoints": {"dmp": f"{base}/prod/dmp", "mss": f"{base}/prod/mss"}}


@router.get("/installations", summary="List installations")
def list_installations(request: Request) -> dict[str, Any]:
    return {"installations": store_of(request).list_installations()}


@router.get("/events", summary="Read data-received events")
def get_events(request: Request, after: int = Query(0, ge=0), limit: int = Query(1000, ge=1, le=10000)) -> dict[str, Any]:
    events, cursor = request.app.state.event_log.read(after, limit)
    return {"events": events, "next": cursor}
