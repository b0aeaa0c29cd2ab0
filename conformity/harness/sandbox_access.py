"""How the harness reaches a sandbox: one it starts in this process, or a running one by URL."""

from __future__ import annotations

import dataclasses
import secrets
import ssl
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from conformity.errors import EXIT_INPUT, UsineError
from conformity.files import trust_anchor
from conformity.jsonio import members

if TYPE_CHECKING:
    from sandbox.config import SandboxConfig
    from sandbox.tls import TestPKI

#: seconds the harness reuses an idle connection to the sandbox: less than the sandbox keeps it open (5 s), so that a
#: request never goes out on a connection the server is closing ("Server disconnected without sending a response":
#: under load a driver step lasts that long, and the scenario lost its trace)
ADMIN_KEEP_ALIVE_S = 2.0


class SandboxUnavailable(UsineError):
    """The sandbox could not be started or reached, or refused this harness: the run could not be made (exit 2, as
    bad input; never 1, which says the software failed a MUST)."""

    exit_code = EXIT_INPUT


def unreachable(url: str, exc: Exception) -> SandboxUnavailable:
    """Why ``url`` could not be reached, with what to do when its certificate is not trusted."""
    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (401, 403):  # reached, and refused
        return SandboxUnavailable(f"the sandbox at {url} refused the token given ({exc.response.status_code}): not a "
                                  "harness token it issued (or its admin token), or expired; ask the agency for one")
    hint = ("; its certificate is not trusted here: give --sandbox-ca with the CA certificate that issued it (a "
            "sandbox started with --test-pki DIR has it as DIR/ca.pem)") if "CERTIFICATE_VERIFY_FAILED" in str(exc) else ""
    return SandboxUnavailable(f"cannot reach the sandbox at {url}: {exc}{hint}")


#: how long a scenario waits for one of its vendor's live-session places when they are all taken (another run of the
#: same software in flight: its scenarios close theirs within seconds), asking again every second
PLACE_WAIT_S = 60.0


def _problem(r: httpx.Response) -> dict[str, Any]:
    """The RFC 9457 problem the sandbox answered (an empty object when the body is none)."""
    try:
        return members(r.json())
    except ValueError:
        return {}


def refusal(r: httpx.Response) -> str:
    """What the sandbox said refusing a request: its RFC 9457 problem's code and detail, else its text's start."""
    problem = _problem(r)
    if isinstance(problem.get("detail"), str):
        return f"HTTP {r.status_code} {problem.get('code') or problem.get('title') or ''}: {problem['detail']}"
    return f"HTTP {r.status_code}: {r.text[:300]}"


#: how many times a scenario asks the sandbox to close its session when the answer is lost on its way (a dropped
#: connection): the sandbox's close is idempotent, a second close answers as the first
CLOSE_ATTEMPTS = 3


def close_session(admin: httpx.Client, session_id: str) -> bool:
    """``POST /admin/sessions/{id}/close``, asked again (up to :data:`CLOSE_ATTEMPTS` times) when its answer is lost (a
    transport error: the sandbox may have closed the session already); whether the session is closed. An earlier
    sandbox answers a second close 410 ``session-closed``: closed, then. A close that never gets through raises
    nothing: the scenario's trace is exported before, and the run's finish closes every session of the run."""
    for attempt in range(1, CLOSE_ATTEMPTS + 1):
        try:
            r = admin.post(f"/admin/sessions/{session_id}/close")
        except httpx.TransportError:
            if attempt < CLOSE_ATTEMPTS:
                time.sleep(0.1 * attempt)
            continue
        return r.is_success or (r.status_code == 410 and _problem(r).get("code") == "session-closed")
    return False


def _until_served(send: Callable[[], httpx.Response], waiting: Callable[[httpx.Response], bool], what: str,
                  wait: float) -> httpx.Response:
    """``send()`` again every second while its answer is one ``waiting`` says passes (a share of this vendor's taken
    for now), for up to ``wait`` seconds; any other refusal, or the share still taken then, raises
    ``httpx.HTTPStatusError`` saying the sandbox's problem (the scenario's error)."""
    deadline = time.monotonic() + wait
    while True:
        r = send()
        if waiting(r) and time.monotonic() + 1.0 < deadline:
            time.sleep(1.0)
            continue
        if r.is_error:
            raise httpx.HTTPStatusError(f"the sandbox refused {what}: {refusal(r)}", request=r.request, response=r)
        return r


def open_session(admin: httpx.Client, body: dict[str, Any], *, wait: float = PLACE_WAIT_S) -> httpx.Response:
    """``POST /admin/sessions``; while the vendor's live sessions are at their bound (429, bound ``live-sessions``),
    asked again every second for up to ``wait`` seconds."""
    return _until_served(lambda: admin.post("/admin/sessions", json=body),
                         lambda r: r.status_code == 429 and _problem(r).get("bound") == "live-sessions",
                         "the session", wait)


def export_trace(admin: httpx.Client, session_id: str, *, wait: float = PLACE_WAIT_S) -> httpx.Response:
    """``GET /admin/sessions/{id}/trace``; while this software's exports under way are at the sandbox's bound (429
    ``exports-under-way``: scenarios ending together), asked again every second for up to ``wait`` seconds."""
    return _until_served(lambda: admin.get(f"/admin/sessions/{session_id}/trace"),
                         lambda r: r.status_code == 429 and _problem(r).get("code") == "exports-under-way",
                         "the trace export", wait)


@dataclass
class SandboxAccess:
    """A sandbox's base URL, admin token, and the TLS trust anchors the software needs."""

    base_url: str
    token: str  # the sandbox's admin token, or a harness token bound to one vendor's software
    ca_certificates: list[str] = field(default_factory=list)
    #: the sandbox's other listeners by class (self_signed, expired, tls1_1…): servers software must refuse
    bad_listeners: dict[str, str] = field(default_factory=dict)
    verify: ssl.SSLContext | bool = True
    _stoppers: list[Any] = field(default_factory=list)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.token}"},
                            timeout=60, verify=self.verify, limits=httpx.Limits(keepalive_expiry=ADMIN_KEEP_ALIVE_S))

    def issue_harness_token(self, vendor_id: str, software_id: str, days: int = 1, *,
                            witnessed: bool = False) -> dict[str, Any] | None:
        """``POST /admin/harness-tokens``: the new token's ``token``, ``expires`` and ``vendor``; None when this access
        holds a harness token (only the admin token mints them: 403). ``witnessed``: a token for a run the sandbox's
        operator drives itself, bounded apart from the tokens issued to the vendor."""
        asked: dict[str, Any] = {"vendor_id": vendor_id, "software_id": software_id, "days": days}
        try:
            with self.admin() as c:
                r = c.post("/admin/harness-tokens", json=asked | ({"witnessed": True} if witnessed else {}))
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from exc
        if r.status_code == 403:
            return None
        if r.status_code != 201:
            raise SandboxUnavailable(f"the sandbox refused a harness token: {r.status_code} {r.text[:300]}")
        body: dict[str, Any] = r.json()
        return body

    def bind(self, vendor_id: str, software_id: str) -> SandboxAccess:
        """This access with a harness token bound to one vendor's software (sessions stamped with it).

        With the admin token, mint such a token — the operator's own run (the agency's witnessed run, a local
        sandbox's): its bounds are counted apart from those of the tokens issued to the vendor, whose runs on the same
        sandbox neither hold its places nor take theirs; with a harness token already, keep it (the sandbox
        stamps the vendor it was issued to, and the runner checks it is the one being tested).
        """
        issued = self.issue_harness_token(vendor_id, software_id, witnessed=True)
        if issued is None:
            return self
        return dataclasses.replace(self, token=issued["token"])  # shares the stoppers of this access

    def listeners(self) -> dict[str, str]:
        """Base URLs scenarios may hand to the software: ``trusted``, then one per bad TLS class."""
        return {"trusted": self.base_url, **self.bad_listeners}

    def close(self) -> None:
        for stop in reversed(self._stoppers):
            stop()
        self._stoppers.clear()

    def __enter__(self) -> SandboxAccess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_local(data_dir: Path | None = None, *, tls: bool = True, **settings: Any) -> SandboxAccess:
    """Start the sandbox in this process on real uvicorn servers (``settings``: more of its :class:`SandboxConfig`).

    With ``tls``: the main server on HTTPS with a certificate of a local test CA (given to the
    software as its trust anchor), and one more HTTPS listener per class of
    :data:`sandbox.tls.LISTENER_CLASSES` (bad certificates, old protocol versions, weak cipher suites)
    that this platform's OpenSSL can serve, for the scenarios that check the software refuses them.
    All serve the same app and state.
    """
    from sandbox.config import SandboxConfig

    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="usine-run-", ignore_cleanup_errors=True)
        data_dir = Path(tmp.name)
    config = SandboxConfig(data_dir=data_dir, admin_token=secrets.token_urlsafe(24), **settings)
    with ThreadPoolExecutor(1, thread_name_prefix="usine-sandbox-keys") as keys:
        # the test keys of a new state folder (RSA and EC generation, mostly outside the GIL) are made while this
        # thread imports the sandbox (FastAPI, the packs' services); the app then loads them
        made = keys.submit(_test_keys, config, data_dir / "pki" if tls else None)
        from sandbox.app import create_app
        from sandbox.server import in_background, start_listeners

        pki = made.result()
    app = create_app(config)
    access = SandboxAccess(base_url="", token=config.admin_token)
    try:
        listeners = start_listeners(app, "127.0.0.1", pki=pki)
    except RuntimeError as exc:
        raise SandboxUnavailable(str(exc)) from exc
    # the run is over when the sandbox is closed: its listeners are told to stop, not waited for (each takes 0.1-0.2 s
    # to notice and close its connections; nothing reads them any more)
    access._stoppers.append(lambda: listeners.stop(wait=False))
    access.base_url = listeners.urls["trusted"]
    access.bad_listeners = {k: v for k, v in listeners.urls.items() if k != "trusted"}
    if pki is not None:
        access.ca_certificates = [Path(pki.ca_cert).read_text()]
        access.verify = ssl.create_default_context(cafile=str(pki.ca_cert))
    if tmp is None:
        access._stoppers.append(app.state.store.close)
    else:  # a state folder of this run only: closed and removed in the background (nobody reads it any more)
        access._stoppers.append(lambda: in_background(app.state.store.close, tmp.cleanup))
    return access


def _test_keys(config: SandboxConfig, pki_folder: Path | None) -> TestPKI | None:
    """The identity provider's keys and the test PKI of a sandbox's state folder, made unless already there."""
    from sandbox.oidc_keys import load_or_create
    from sandbox.tls import make_test_pki

    load_or_create(config.idp_key_path)
    return make_test_pki(pki_folder) if pki_folder is not None else None


def connect(url: str, token: str, ca_file: Path | None = None, *, ca_option: str = "--sandbox-ca") -> SandboxAccess:
    """Use a sandbox already running at ``url`` with a harness token (or the admin token); ``ca_option`` names
    ``ca_file`` in messages."""
    verify: ssl.SSLContext | bool = trust_anchor(ca_file, ca_option) if ca_file else True
    access = SandboxAccess(base_url=url.rstrip("/"), token=token,
                           ca_certificates=[ca_file.read_text()] if ca_file else [], verify=verify)
    try:
        with access.admin() as c:
            c.get("/health").raise_for_status()
            found = c.get("/admin/listeners")
            found.raise_for_status()
            urls = found.json()["listeners"]
            access.bad_listeners = {k: str(v) for k, v in urls.items() if k != "trusted"}
    except httpx.HTTPError as exc:
        raise unreachable(url, exc) from exc
    return access
