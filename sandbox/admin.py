"""The admin API (admin token): runs, sessions, faults, driver notes, traces, installations, events."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import secrets
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from conformity.checks.trace import FAULTS_NOTE
from conformity.counting import KeyedCounts
from conformity.errors import SignatureError
from conformity.jsonio import MAX_DEPTH, depth
from conformity.naming import ID_LENGTH, ID_SHAPE, owned_software_id, ownership_problem
from conformity.runs import MAX_RUN_SEED, RUN_ID_PATTERN, scenario_seed
from conformity.signing import require_canonicalisable
from sandbox import plugins
from sandbox.auth_first import auth_first
from sandbox.clock import timestamp
from sandbox.credentials import secret_hash
from sandbox.deps import (
    Principal,
    json_body,
    owned_session,
    reaches,
    require_admin,
    require_labellable,
    require_principal,
    store_call,
    store_of,
    waves_catalog,
)
from sandbox.faults import described, validate_faults
from sandbox.problems import HTTPProblem, recording_full
from sandbox.recording import redact_issued
from sandbox.sessions import (
    create_session,
    fixtures_of,
    new_id,
    new_run,
    public_view,
    run_view,
    session_run,
    utc_now,
)
from sandbox.store import Bound, BoundReached, RunBounds, SessionGone, Store
from sandbox.tls import LISTENER_CLASSES
from sandbox.traces import build_trace

#: every admin route authenticates its caller before FastAPI reads its body (401 first: sandbox.auth_first)
router = APIRouter(prefix="/admin", tags=["admin"], route_class=auth_first(require_principal))
Admin = Annotated[Principal, Depends(require_admin)]
Caller = Annotated[Principal, Depends(require_principal)]
#: operations with a JSON body: 415 for any other media type (sandbox.problems: one rule for bad input)
JSON_BODY = [Depends(json_body)]
#: how long a harness note waits at most for a held answer of its session to end (software that returned from a
#: step without closing its connection keeps it held: the note then goes first)
NOTE_WAITS_FOR_HELD = 5.0
#: how long a note waits at most for the session's requests this process is handling: those the software gave up on
#: (the sandbox is late with them), or one it left half-sent past its step (held answers are the store's, above)
NOTE_WAITS_FOR_REQUESTS = 15.0
#: request models are strict: "3" is not an integer and true is not a string (no coercion), unknown members refused
STRICT = ConfigDict(extra="forbid", strict=True)


#: the most scenarios a run may list
MAX_RUN_SCENARIOS = 500
SCENARIO_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
PACK_NAME = r"^[a-z][a-z0-9-]*$"


class RunRequest(BaseModel):
    model_config = STRICT
    wave: str = Field(..., pattern=r"^[0-9]{4}-W[0-9]+$")
    category: str = Field(..., pattern=r"^[A-Z][A-Z0-9_]*$")
    pack: str = Field(..., pattern=PACK_NAME, description="The sector pack whose services the run's sessions have.")
    scenarios: list[Annotated[str, Field(pattern=SCENARIO_ID)]] = Field(
        ..., min_length=1, max_length=MAX_RUN_SCENARIOS, description="The scenarios of the run (unique ids): one "
                                                                     "session each, never two.")
    seed: int | None = Field(None, ge=0, le=MAX_RUN_SEED, description="The run's seed, when the caller chooses it (a "
                             "vendor reproducing a run: such a run cannot be labelled); by default the sandbox draws "
                             "it.")

    @field_validator("scenarios")
    @classmethod
    def unique(cls, scenarios: list[str]) -> list[str]:
        twice = sorted({s for s in scenarios if scenarios.count(s) > 1})
        if twice:
            raise ValueError(f"scenarios listed more than once: {', '.join(twice)}")
        return scenarios


class SessionRequest(BaseModel):
    model_config = STRICT
    seed: int | None = Field(None, ge=0, le=2**53 - 1, description="Seed of the fixtures (and recorded in the trace, "
                             "whose canonical JSON holds integers up to 2**53 - 1); default 0. With ``run_id`` the "
                             "sandbox derives it from the run's seed: absent, or equal to it.")
    run_id: str | None = Field(None, pattern=RUN_ID_PATTERN, description="The run (``POST /admin/runs``) this "
                               "session plays a scenario of; with ``scenario``.")
    scenario: str | None = Field(None, pattern=SCENARIO_ID, description="The scenario of the run this session plays "
                                 "(one session per scenario of a run); with ``run_id``.")
    label: str = Field("", max_length=200)
    pack: str | None = Field(None, pattern=PACK_NAME, description="The sector pack whose services and fixtures the "
                             "session has (default: every installed pack's; with ``run_id``, the run's).")
    fixture_options: dict[str, int] = Field(default_factory=dict, max_length=10, description="Options of the pack's "
                                            "fixture generator, e.g. how many records of a kind to generate.")
    redirect_uris: list[str] = Field(default_factory=list, max_length=20)
    id_token_signed_response_alg: Literal["RS256", "ES256"] = Field(
        "RS256", description="How the identity provider signs ID tokens (and signed userinfo, access tokens) for "
                             "this session's client: RS256 (the OpenID Connect default) or ES256.")

    @model_validator(mode="after")
    def run_and_scenario(self) -> SessionRequest:
        if (self.run_id is None) != (self.scenario is None):
            raise ValueError("run_id and scenario go together: a session plays one scenario of a run")
        return self


#: the notes the sandbox itself writes into a trace (what a harness asked of it, ``FAULTS_NOTE``): no harness note
#: may take such a name
SANDBOX_NOTES = "sandbox."


#: how deep a note's data may nest: its trace stays readable where the agency reads it (``MAX_DEPTH``, the trace's own
#: levels above a note's data included)
NOTE_MAX_DEPTH = MAX_DEPTH - 8


class NoteRequest(BaseModel):
    model_config = STRICT
    kind: str = Field(..., pattern=r"^[a-z][a-z0-9_.\-]*$", max_length=100)
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def not_the_sandboxs(cls, kind: str) -> str:
        if kind.startswith(SANDBOX_NOTES):
            raise ValueError(f"notes named {SANDBOX_NOTES}… are the sandbox's own record, not a harness's")
        return kind

    @field_validator("data")
    @classmethod
    def signable(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The note goes into the signed trace: a value canonical JSON cannot hold (NaN, infinity, an integer beyond
        2**53 - 1) is refused here (422), never stored where it would make the session's trace unsignable."""
        try:
            require_canonicalisable(data)
        except SignatureError as exc:
            raise ValueError(str(exc)) from None
        if depth(data) > NOTE_MAX_DEPTH:  # the trace stays readable (and its redaction within the recursion limit)
            raise ValueError(f"a note's data nests at most {NOTE_MAX_DEPTH} levels deep")
        return data


class Software(BaseModel):
    model_config = STRICT
    id: str = Field(..., min_length=1, max_length=100)
    name: str = Field(..., min_length=1, max_length=200)
    version: str = Field(..., min_length=1, max_length=50)
    registration_id: str = Field("", max_length=100)


class Site(BaseModel):
    model_config = STRICT
    #: the spelling the data-received schema takes (one spelling a site: a payment run refuses any other)
    id: str = Field(..., min_length=1, max_length=50, pattern=r"^[0-9A-Z][0-9A-Z._-]*$")
    size: str = Field(..., pattern=r"^[A-Z][A-Z0-9_]*$")
    name: str = Field("", max_length=200)


class InstallationRequest(BaseModel):
    model_config = STRICT
    vendor_id: str = Field(..., min_length=1, max_length=100)
    software: Software
    site: Site
    wave: str = Field(..., pattern=r"^[0-9]{4}-W[0-9]+$")
    category: str = Field(..., pattern=r"^[A-Z][A-Z0-9_]*$")


class HarnessTokenRequest(BaseModel):
    model_config = STRICT
    vendor_id: str = Field(..., min_length=ID_LENGTH[0], max_length=ID_LENGTH[1], pattern=ID_SHAPE)
    software_id: str = Field(..., min_length=ID_LENGTH[0], max_length=ID_LENGTH[1], pattern=ID_SHAPE)
    days: int = Field(90, ge=1, le=400, description="Validity in days.")
    witnessed: bool = Field(False, description="For a run the sandbox's operator drives itself (the agency witnessing "
                                               "the software): the token's bounds (live sessions, recorded bytes, runs "
                                               "per hour and day, exports) are counted apart from those of the tokens "
                                               "issued to the vendor; its sessions are bound to the same software.")

    @model_validator(mode="after")
    def software_of_the_vendor(self) -> HarnessTokenRequest:
        if not owned_software_id(self.software_id, self.vendor_id):
            raise ValueError(ownership_problem(self.software_id, self.vendor_id))
        return self


@router.post("/harness-tokens", status_code=201, dependencies=JSON_BODY,
             summary="Issue a harness token bound to one vendor's software")
def post_harness_token(request: Request, body: HarnessTokenRequest, _: Admin) -> dict[str, Any]:
    token = secrets.token_urlsafe(32)
    vendor = {"vendor_id": body.vendor_id, "software_id": body.software_id}
    data: dict[str, Any] = {"vendor": vendor} | ({"witnessed": True} if body.witnessed else {})
    store_of(request).put_token(token, "harness", "harness", data, ttl=body.days * 86400)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=body.days)
    return {"token": token, "vendor": vendor, "witnessed": body.witnessed,
            "expires": expires.isoformat(timespec="seconds").replace("+00:00", "Z")}


@router.post("/runs", status_code=201, dependencies=JSON_BODY,
             summary="Create a run: its id and seed the sandbox's, its attempt number counted for the harness token's "
                     "software in this wave and category")
def post_run(request: Request, body: RunRequest, caller: Caller) -> dict[str, Any]:
    require_labellable(body.wave, body.category)
    if body.pack not in plugins.packs():
        raise HTTPProblem(422, "pack-unknown", f"no sandbox for pack {body.pack!r} (packs: {', '.join(plugins.packs())})",
                          where="pack")
    wave_pack = waves_catalog("check the run's pack").waves[body.wave].pack
    if body.pack != wave_pack:
        # a run's sessions have its pack's services and fixtures: those of the wave it is counted in, no other
        raise HTTPProblem(422, "pack-not-the-waves", f"wave {body.wave} is of pack {wave_pack!r}, not "
                                                     f"{body.pack!r}", where="pack")
    run = new_run(bound_to=caller.vendor, wave=body.wave, category=body.category, pack=body.pack,
                  scenarios=body.scenarios, seed=body.seed) | ({"witnessed": True} if caller.witnessed else {})
    config = request.app.state.config
    key = caller.bounds_key()
    bounds = None if key is None else RunBounds(config.vendor_runs_per_hour, config.vendor_runs_per_day, key)
    try:
        return run_view(store_of(request).create_run(run, bounds))
    except BoundReached as reached:
        raise bound_problem(reached.bound, caller) from None


#: what each vendor bound counts, for its 429
BOUND_WHAT = {"live-sessions": "live test sessions (open and unexpired: close those you are done with, "
                               "POST /admin/sessions/{id}/close)",
              "runs-per-hour": "runs created in the last hour", "runs-per-day": "runs created in the last day",
              "recorded-bytes": "bytes recorded by its sessions (traces, documents, messages; kept until swept, "
                                "after the sessions' retention)"}


def swept_after(config: Any) -> float:
    """Seconds after its creation a session is swept at the latest (its retention after its expiry, and the wait for
    the next sweep): when what it recorded stops counting among its vendor's bytes, however early it was closed."""
    return float(config.session_ttl + config.session_retention + config.sweep_seconds)


def require_room(store: Store, session: dict[str, Any], config: Any) -> None:
    """413 ``session-recording-full`` when the session made the sandbox keep its bound already: nothing more of it is
    recorded (its trace stays whole up to there)."""
    if store.recorded_bytes(session["id"]) >= config.session_recorded_bytes:
        raise recording_full(session["id"], config.session_recorded_bytes)



def bound_problem(bound: Bound, caller: Principal) -> HTTPProblem:
    """429 ``vendor-bound-reached``: one vendor's share of the sandbox is used up (the other vendors of the wave are
    still served), with Retry-After: when a place frees at the latest (a session closed earlier frees one sooner)."""
    wait = max(1, math.ceil(bound.frees_at - time.time()))
    vendor = caller.vendor or {}
    return HTTPProblem(429, "vendor-bound-reached", f"{vendor.get('vendor_id')}/{vendor.get('software_id')} has "
                                                    f"{bound.limit} {BOUND_WHAT[bound.what]}, the most this sandbox "
                                                    "allows one vendor's software", bound=bound.what,
                       limit=bound.limit, retry_after=wait, headers={"Retry-After": str(wait)})


@router.get("/runs/{run_id}", summary="One run of the token's software: its seed only once it is finished (or the "
                                      "caller's)")
def get_run(request: Request, run_id: str, caller: Caller) -> dict[str, Any]:
    run = _run_of(request, run_id, caller)
    return run_view(run, store_of(request).run_finished(run["id"]))


@router.post("/runs/{run_id}/finish", summary="Finish a run: no session of it after; its seed revealed, with the "
                                              "scenarios its sessions played")
def finish_run(request: Request, run_id: str, caller: Caller) -> dict[str, Any]:
    run = _run_of(request, run_id, caller)
    store = store_of(request)
    finished, played = store.finish_run(run["id"], utc_now())
    # its sessions left open are closed: they no longer count among the vendor's live sessions (finish_run), so they
    # are no longer served either (else each finished run gave its vendor as many sessions more as it had scenarios)
    for _, session_id in played:
        store.update_session(session_id, close_open)
    return run_view(run, finished, played)


def close_open(session: dict[str, Any]) -> None:
    """A session's state closed, unless it is closed already (:meth:`Store.update_session`'s change)."""
    if session.get("state") == "open":
        session["state"] = "closed"


def _run_of(request: Request, run_id: str, caller: Caller) -> dict[str, Any]:
    """The run ``run_id`` if the caller's token created it (the same binding); 404 otherwise, as for an unknown run
    (another software's runs are not revealed)."""
    run = store_of(request).get_run(run_id)
    if run is None or run["bound_to"] != caller.vendor or not reaches(caller, run):  # a witnessed run: its token's
        raise HTTPProblem(404, "run-unknown", f"no run {run_id!r} of your token's software: create it with "
                                              "POST /admin/runs", where="run_id")
    return run


@router.post("/sessions", status_code=201, dependencies=JSON_BODY,
             summary="Create a test session (bound to the harness token's vendor); with run_id and scenario, one "
                     "scenario of a run, its seed the run's")
def post_session(request: Request, body: SessionRequest, caller: Caller) -> dict[str, Any]:
    pack, seed, run = body.pack, body.seed or 0, None
    if body.run_id is not None and body.scenario is not None:
        run = _run_of(request, body.run_id, caller)
        if body.scenario not in run["scenarios"]:
            raise HTTPProblem(422, "scenario-not-in-run", f"scenario {body.scenario!r} is not one of run "
                                                          f"{body.run_id}'s", where="scenario")
        seed = scenario_seed(run["seed"], body.scenario)
        if body.seed is not None and body.seed != seed:
            raise HTTPProblem(422, "seed-not-the-runs", f"the seed of scenario {body.scenario} in run {body.run_id} is "
                                                        "the sandbox's to derive from the run's: give none",
                              where="seed")
        if pack is not None and pack != run["pack"]:
            raise HTTPProblem(422, "pack-not-the-runs", f"run {body.run_id} is of pack {run['pack']!r}", where="pack")
        if body.fixture_options:
            # the fixtures of a run's scenario are the sandbox's, as its seed is: no caller shapes what it is tested on
            raise HTTPProblem(422, "fixture-options-not-in-run", f"a session of run {body.run_id} has the pack's own "
                                                                 "fixtures for its seed: give no fixture_options",
                              where="fixture_options")
        pack = run["pack"]
    if pack is not None and pack not in plugins.packs():
        raise HTTPProblem(422, "pack-unknown", f"no sandbox for pack {pack!r} (packs: {', '.join(plugins.packs())})")
    try:
        fixtures = fixtures_of(seed, pack, body.fixture_options)
    except (TypeError, ValueError) as exc:
        raise HTTPProblem(422, "fixture-options-invalid", f"the pack's fixture generator refused the options: {exc}") from None
    store, sid = store_of(request), new_id("ses")
    config = request.app.state.config
    if (key := caller.bounds_key()) is not None:  # the vendor's live sessions: one more, unless at its bound already
        try:
            store.admit_session(key, sid, time.time() + config.session_ttl,
                                config.vendor_live_sessions, max_bytes=config.vendor_recorded_bytes,
                                swept_after=swept_after(config))
        except BoundReached as reached:
            raise bound_problem(reached.bound, caller) from None
    try:
        return _new_session(request, body, caller, store, sid, seed, pack, fixtures, run)
    except BaseException:
        store.forget_session(sid)  # never created: it takes no place
        raise


def _new_session(request: Request, body: SessionRequest, caller: Principal, store: Store, sid: str, seed: int,
                 pack: str | None, fixtures: dict[str, Any], run: dict[str, Any] | None) -> dict[str, Any]:
    """The session ``sid`` created (its scenario of ``run`` claimed first); the view the admin API returns."""
    if run is not None and body.scenario is not None:
        if "seed_commitment" not in run:
            # issued by an earlier sandbox, which answered its seed at once: a run whose data could be rehearsed
            raise HTTPProblem(409, "run-finished", f"run {run['id']} was issued with its seed revealed (an earlier "
                                                   "sandbox): it takes no session; create a new run", where="run_id")
        claim = store.claim_scenario(run["id"], body.scenario, sid)
        if claim == "finished":
            raise HTTPProblem(409, "run-finished", f"run {run['id']} is finished (its seed revealed): it takes no "
                                                   "session; create a new run (the attempt is counted)",
                              where="run_id")
        if claim == "taken":
            raise HTTPProblem(409, "scenario-already-run", f"scenario {body.scenario} of run {run['id']} already has "
                                                           "its session: a run plays each scenario once (run again "
                                                           "for another try; the attempt is counted)",
                              where="scenario")
    try:
        session = create_session(store, str(request.base_url), seed=seed, label=body.label,
                                 fixtures=fixtures, redirect_uris=body.redirect_uris, bound_to=caller.vendor,
                                 id_token_signed_response_alg=body.id_token_signed_response_alg, pack=pack,
                                 run=session_run(run, body.scenario) if run is not None and body.scenario else None,
                                 session_id=sid, witnessed=caller.witnessed)
    except BaseException:
        # the session was never stored nor shown: its scenario is given back (else the run lost it for good, and the
        # vendor a counted attempt)
        if run is not None and body.scenario is not None:
            store.release_scenario(run["id"], body.scenario, sid)
        raise
    return public_view(session)


@router.get("/sessions", summary="List test sessions")
def list_sessions(request: Request, _: Admin) -> dict[str, Any]:
    return {"sessions": [{"session_id": s["id"], "label": s["label"], "seed": s["seed"], "state": s["state"],
                          "created": s["created"]} for s in store_of(request).list_sessions()]}


@router.get("/sessions/{session_id}", summary="One test session")
def get_one(request: Request, session_id: str, caller: Caller) -> dict[str, Any]:
    return public_view(owned_session(request, session_id, caller))


@router.get("/listeners", summary="The URLs this sandbox serves on: trusted, and one per bad TLS class software "
                                  "must refuse (each described)")
def listeners(request: Request, _: Caller) -> dict[str, Any]:
    urls = getattr(request.app.state, "listeners", {})
    return {"listeners": urls, "classes": {c.name: c.what for c in LISTENER_CLASSES if c.name in urls}}


@router.get("/faults", summary="The faults a session can inject")
def fault_catalogue(_: Caller) -> dict[str, Any]:
    return {"faults": described()}


@router.put("/sessions/{session_id}/faults", dependencies=JSON_BODY,
             summary="Set or clear injected faults")
async def put_faults(request: Request, session_id: str, body: dict[str, Any], caller: Caller) -> dict[str, Any]:
    require_room(store_of(request), owned_session(request, session_id, caller), request.app.state.config)
    errors = validate_faults(body)
    if errors:
        raise HTTPProblem(422, "faults-invalid", "; ".join(errors))

    def change(session: dict[str, Any]) -> None:
        for service, spec in body.items():
            if spec:
                session["faults"][service] = spec
            else:
                session["faults"].pop(service, None)

    store = store_of(request)
    session = store.update_session(session_id, change)
    faults = session["faults"] if session else {}
    # what the session's software met is the sandbox's to say: the agency compares it with the scenario's plan
    append_note(store, session_id, FAULTS_NOTE, {"set": body, "faults": faults}, timestamp())
    return {"faults": faults}


# notes, faults and closing run on the event loop (a few store statements, cheaper than FastAPI's thread hop for a
# plain function: a harness posts a note for every step); building and signing a trace stays in the thread pool
@router.post("/sessions/{session_id}/notes", status_code=201, dependencies=JSON_BODY,
             summary="Add a harness note to the trace")
async def post_note(request: Request, session_id: str, body: NoteRequest, caller: Caller) -> dict[str, Any]:
    store = store_of(request)
    session = await store_call(store, owned_session, request, session_id, caller)
    # the note ends the driver's step: every request of the session this process is still handling (the software
    # gave up on it, the sandbox is late) is recorded first, whatever the timing, so that it stays in its step
    in_flight = request.app.state.in_flight
    deadline = time.monotonic() + NOTE_WAITS_FOR_REQUESTS
    while in_flight.busy(session_id) and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    # an answer of this session still held until the software gives up ends before the note: the note was posted
    # after the software's step returned (so after it gave up); its connection's end may still be on its way (in
    # another worker process: the store knows)
    waited = 0.0
    while await store_call(store, store.holding, session_id) and waited < NOTE_WAITS_FOR_HELD:
        await asyncio.sleep(0.01)
        waited += 0.01
    now = timestamp()

    def write() -> int:
        require_room(store, session, request.app.state.config)
        data = redact_issued(body.data, session, store)  # secrets the software handed back never enter a trace
        return append_note(store, session_id, body.kind, data, now)

    return {"seq": await store_call(store, write)}


def append_note(store: Store, session_id: str, note: str, data: Any, now: str) -> int:
    """Append a note to a session's trace; its sequence number. 404 ``session-unknown`` when the session was swept
    while the note was being written (nothing was)."""
    try:
        return store.append_exchange(session_id, {"kind": "note", "time": now, "note": note, "data": data})
    except SessionGone:
        raise HTTPProblem(404, "session-unknown", f"no test session {session_id!r} (swept after its retention)") from None


#: signed trace exports one vendor's software may have under way at once in a worker: each reads, canonicalises and
#: signs the whole trace in memory (up to what its session recorded), so a vendor asking for all its sessions' traces
#: at once would hold that many in memory; the harness exports each as its scenario ends. The admin's: not bounded.
EXPORTS_AT_ONCE = 2


@router.get("/sessions/{session_id}/trace", summary="Export the signed trace of a session",
            responses={429: {"description": "This vendor's software already has exports under way (Retry-After)"}})
def get_trace(request: Request, session_id: str, caller: Caller) -> dict[str, Any]:
    session = owned_session(request, session_id, caller, open_only=False)
    exports: KeyedCounts = request.app.state.exports
    key = caller.bounds_key()
    if key is not None and not exports.enter(key, EXPORTS_AT_ONCE):
        raise HTTPProblem(429, "exports-under-way", f"{EXPORTS_AT_ONCE} trace exports of this software are under way: "
                                                    "ask again when one is done", limit=EXPORTS_AT_ONCE,
                          retry_after=1, headers={"Retry-After": "1"})
    try:
        return build_trace(store_of(request), session, request.app.state.trace_key)
    finally:
        if key is not None:
            exports.leave(key)


@router.post("/sessions/{session_id}/close", summary="Close a test session (closing a closed one again answers the "
                                                     "same: a harness retrying a close whose answer it lost)")
async def close_session(request: Request, session_id: str, caller: Caller) -> dict[str, Any]:
    # idempotent: what a close asks (the session closed) is so, whether this call or an earlier one closed it; a
    # session closed, expired or of a finished run is closed again as it is (404 unknown, 403 another's: as before)
    owned_session(request, session_id, caller, open_only=False)
    session = store_of(request).update_session(session_id, close_open)
    store_of(request).end_session(session_id)  # no longer one of its vendor's live sessions
    return {"session_id": session_id, "state": session["state"] if session else "closed"}


@router.post("/installations", status_code=201, dependencies=JSON_BODY,
             summary="Register an installed software at a site")
def post_installation(request: Request, body: InstallationRequest, _: Admin) -> dict[str, Any]:
    require_labellable(body.wave, body.category)
    token = secrets.token_urlsafe(32)
    inst = {"id": new_id("ins"), "vendor_id": body.vendor_id, "software": body.software.model_dump(),
            "site": body.site.model_dump(), "wave": body.wave, "category": body.category, "state": "active",
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    store_of(request).put_installation(inst, secret_hash(token))
    base = str(request.base_url).rstrip("/")
    production = {name: f"{base}/prod/{name}" for name, module in plugins.services().items() if hasattr(module, "prod_router")}
    return inst | {"token": token, "endpoints": production}


@router.get("/installations", summary="List installations")
def list_installations(request: Request, _: Admin) -> dict[str, Any]:
    return {"installations": store_of(request).list_installations()}


@router.get("/events", summary="Read data-received events")
def get_events(request: Request, _: Admin, after: int = Query(0, ge=0),
               limit: int = Query(1000, ge=1, le=10000)) -> dict[str, Any]:
    events, cursor = request.app.state.event_log.read(after, limit)
    return {"events": events, "next": cursor}


@router.post("/events/seal", summary="Seal the events emitted since the last segment into a signed segment")
def seal_events(request: Request, _: Admin) -> dict[str, Any]:
    log = request.app.state.event_log
    return {"sealed": log.seal(), "segments": log.segments()}


@router.post("/events/parquet", summary="Export every data-received event as a sealed Parquet events file")
def export_events_parquet(request: Request, _: Admin) -> dict[str, Any]:
    try:
        return request.app.state.event_log.export_parquet()  # type: ignore[no-any-return]
    except ValueError as exc:
        raise HTTPProblem(409, "no-events", str(exc)) from exc
