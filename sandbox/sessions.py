"""Test sessions: created by the admin API with a seed and fixtures; isolated from each other.

A session serves one pack (its provider and services, its fixtures), or every installed pack when none is named:
the fixtures are then each pack's, merged in pack order (a key an earlier pack set is kept).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Any

from conformity.runs import SANDBOX_SEED_BOUND, new_run_id, seed_commitment
from sandbox import plugins
from sandbox.store import Store, hash_session_secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(12).replace('-', 'x').replace('_', 'y')}"


def services(pack: str | None) -> tuple[str, ...]:
    """The services of a session of ``pack`` (every installed pack's when None)."""
    chosen = [plugins.pack_of(pack)] if pack else list(plugins.packs().values())
    return tuple(name for p in chosen for name in p.service_names())


def fixtures_of(seed: int, pack: str | None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A session's fixtures: its pack's for ``seed``, or every pack's merged (earlier packs win a shared key)."""
    if pack:
        return plugins.pack_of(pack).fixtures(seed, **(options or {}))
    merged: dict[str, Any] = {}
    for p in plugins.packs().values():
        for key, value in p.fixtures(seed, **(options or {})).items():
            merged.setdefault(key, value)
    return merged


def endpoints(base_url: str, session_id: str, pack: str | None = None) -> dict[str, str]:
    base = base_url.rstrip("/") + f"/s/{session_id}"
    return {name: f"{base}/{name}" for name in services(pack)} | {"trace": f"{base}/trace"}


def create_session(store: Store, base_url: str, *, seed: int, label: str = "",
                   fixtures: dict[str, Any] | None = None, redirect_uris: list[str] | None = None,
                   bound_to: dict[str, str] | None = None,
                   id_token_signed_response_alg: str = "RS256", pack: str | None = None,
                   run: dict[str, Any] | None = None, session_id: str | None = None,
                   witnessed: bool = False) -> dict[str, Any]:
    """Create and store a session; return it with its credentials in clear (the only time they are).

    The store keeps the client secret and session token as hashes (``hash_session_secrets``).
    ``bound_to``: the vendor and software of the harness token that created it (None: the admin did);
    it is part of the signed trace, so the agency knows whose run a trace records.
    ``id_token_signed_response_alg``: how the identity provider signs for this session's client (RS256, ES256).
    ``pack``: the pack whose services and fixtures the session has (None: every installed pack's).
    ``run``: the run issued by the sandbox this session plays one scenario of (:func:`session_run`; None: a session
    outside any run, whose trace no agency takes as a run's); like ``bound_to``, part of the signed trace.
    ``session_id``: the id it takes (default: a new one).
    ``witnessed``: created by a harness token the sandbox's operator minted for a run it drives itself (the
    agency's witnessed run): only such a token manages it (:func:`sandbox.deps.reaches`), not the vendor's own,
    though ``bound_to`` is the same software. Not in the trace.
    """
    sid = session_id or new_id("ses")
    session: dict[str, Any] = {
        "id": sid, "label": label, "seed": seed, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "created_ts": time.time(), "state": "open", "base_url": base_url.rstrip("/"),
        "client_id": new_id("cli"), "client_secret": secrets.token_urlsafe(24),
        "session_token": secrets.token_urlsafe(32),
        "redirect_uris": redirect_uris or [],
        "pack": pack,
        "fixtures": fixtures if fixtures is not None else fixtures_of(seed, pack),
        "faults": {},
        "bound_to": bound_to,
        "run": run,
        "id_token_signed_response_alg": id_token_signed_response_alg,
    } | ({"witnessed": True} if witnessed else {})
    store.put_session(hash_session_secrets(session))
    store.put_token(session["session_token"], "session", sid, {"session_id": sid}, ttl=7 * 24 * 3600)
    return session


def new_run(*, bound_to: dict[str, str] | None, wave: str, category: str, pack: str, scenarios: list[str],
            seed: int | None) -> dict[str, Any]:
    """A run to store (its attempt is the store's to count): its id made here, its seed drawn here with
    :mod:`secrets` (:data:`SANDBOX_SEED_BOUND`: a secret until the run is finished) unless the caller gives one
    (``seed_source``: who chose it), and its seed's commitment (every trace of the run signs it)."""
    drawn = secrets.randbelow(SANDBOX_SEED_BOUND) if seed is None else seed
    return {"id": new_run_id(), "seed": drawn, "seed_commitment": seed_commitment(drawn),
            "seed_source": "sandbox" if seed is None else "caller", "bound_to": bound_to, "wave": wave,
            "category": category, "pack": pack, "scenarios": scenarios,
            "created": utc_now()}


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def run_view(run: dict[str, Any], finished: str | None = None,
             played: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """What the admin API returns about a run. The seed the sandbox drew is its secret until the run is finished
    (``finished``: when): a vendor knowing it could rehearse the run's every scenario before playing it; a seed the
    caller chose is the caller's. ``played``: the scenarios its sessions took (scenario, session id), once finished."""
    revealed = finished is not None or run["seed_source"] == "caller"
    return {"run_id": run["id"], "seed": run["seed"] if revealed else None, "seed_commitment": run.get("seed_commitment"),
            "seed_source": run["seed_source"], "attempt": run["attempt"],
            "bound_to": run["bound_to"], "wave": run["wave"], "category": run["category"], "pack": run["pack"],
            "scenarios": run["scenarios"], "created": run["created"], "finished": finished,
            **({"played": [{"scenario": s, "session_id": sid} for s, sid in played]} if played is not None else {})}


def session_run(run: dict[str, Any], scenario: str) -> dict[str, Any]:
    """What a session of ``scenario`` of ``run`` records of it (in its signed trace): the run, who chose its seed and
    the seed's commitment (which the seed revealed when the run is finished must match), its attempt number, and
    the scenario (the wave and category it was issued for)."""
    return {"id": run["id"], "wave": run["wave"], "category": run["category"], "seed_source": run["seed_source"],
            "seed_commitment": run["seed_commitment"], "attempt": run["attempt"], "scenario": scenario}


def _credentials(session: dict[str, Any]) -> dict[str, Any]:
    """In clear when the session was just created; afterwards only what may be shown (prefixes)."""
    if "client_secret" in session:
        return {"client_id": session["client_id"], "client_secret": session["client_secret"],
                "session_token": session["session_token"]}
    return {"client_id": session["client_id"], "client_secret_prefix": session.get("client_secret_prefix"),
            "session_token_prefix": session.get("session_token_prefix"),
            "note": "secrets are shown once, when the session is created; the sandbox keeps only their hashes"}


def public_view(session: dict[str, Any]) -> dict[str, Any]:
    """What the admin API returns about a session: endpoints, credentials, fixtures."""
    return {
        "session_id": session["id"], "label": session["label"], "seed": session["seed"], "state": session["state"],
        "created": session["created"], "pack": session.get("pack"),
        "endpoints": endpoints(session["base_url"], session["id"], session.get("pack")),
        "credentials": _credentials(session),
        "trust_anchors": {"trace_keys": session["base_url"] + "/.well-known/usine-trace-keys",
                          "provider_jwks": {name: f"{session['base_url']}/s/{session['id']}/{name}/jwks"
                                            for name in plugins.profiles() if name in services(session.get("pack"))}},
        "fixtures": session["fixtures"], "faults": session["faults"], "bound_to": session.get("bound_to"),
        "run": session.get("run"),
        "id_token_signed_response_alg": session.get("id_token_signed_response_alg", "RS256"),
    }
