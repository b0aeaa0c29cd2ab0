"""Server-rendered pages (no script needed): the public registry, labels, waves; vendors' and staff pages.

Forms that change something are POSTed with the session's CSRF token and answered by a redirect
(post/redirect/get); every such action is the registry operation the CLI performs, then an audit entry.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from conformity.agency import feed, submit
from conformity.agency.progress import wave_progress
from conformity.agency.progress_view import progress_html
from conformity.agency.registry import Registry, Submission
from conformity.agency.service import accounts, audit, public, staff_actions, uploads, witnessed
from conformity.agency.service.accounts import Session
from conformity.agency.service.deps import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    client,
    config_of,
    cookie_name,
    current_session,
    flash_query,
    flash_text,
    signed_in,
    signed_in_again,
)
from conformity.agency.service.problems import HTTPProblem, shown
from conformity.catalog.render import spec_html
from conformity.errors import InputError

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
templates.env.auto_reload = False  # the templates ship with the package: no stat() of each file on every render
#: media types shown inline to reviewers; anything else is downloaded
INLINE = {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"}
EVIDENCE_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
MAX_FORM = 64 * 1024


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def page(request: Request, name: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    session = current_session(request)
    return templates.TemplateResponse(request, name, {"session": session, **context}, status_code=http_status)


def error_page(request: Request, problem: HTTPProblem) -> Response:
    return page(request, "error.html", problem.status, problem=problem)


async def form_of(request: Request) -> Any:
    """A small urlencoded form (bounded: these forms carry a few fields)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_FORM:
        raise HTTPProblem(413, "too-large", "this form is too large")
    return await request.form(max_files=0, max_fields=50)


# ------------------------------------------------------------------------------------------------ public
@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    cfg = config_of(request)
    with Registry(cfg.database) as reg:
        labels = reg.labels()
    now = _now()
    valid = sum(1 for d, r, _ in labels if not r and d["expires"] >= now.date().isoformat())
    return page(request, "home.html", waves=sorted(cfg.catalog.waves.values(), key=lambda w: w.id),
                labels=len(labels), valid=valid)


@router.get("/registry", response_class=HTMLResponse)
def registry(request: Request, wave: str = "", category: str = "", vendor: str = "", state: str = "",
             q: str = Query("", max_length=200)) -> Response:
    cfg = config_of(request)
    filters = public.Filters(wave, category, vendor, state, q)
    with Registry(cfg.database) as reg:
        data = public.registry_data(reg, request.app.state.signing_key, filters, _now())
    cats = sorted({c for w in cfg.catalog.waves.values() for c in w.categories})
    return page(request, "registry.html", rows=public.rows(data), filters=filters, query=filters.query(),
                waves=sorted(cfg.catalog.waves), categories=cats, statuses=public.STATUSES)


@router.get("/labels/{label_id}", response_class=HTMLResponse)
def label_page(request: Request, label_id: str) -> Response:
    cfg = config_of(request)
    with Registry(cfg.database) as reg:
        found = [(d, r, why) for d, r, why in reg.labels() if d["label_id"] == label_id]
        if not found:
            raise HTTPProblem(404, "no-such-label", f"no label {label_id!r} in the registry")
        doc, revoked, reason = found[0]
        sub = reg.get(label_id)
        reinstated = [x for x in reg.labels_of(sub.id) if x[0] == label_id and x[3]]
    from conformity.agency.export import label_status

    return page(request, "label.html", doc=doc, label_status=label_status(doc, revoked, _now()), revoked=revoked,
                reason=reason, submission=sub, reinstated=reinstated[0][3] if reinstated else None)


@router.get("/revocations", response_class=HTMLResponse)
def revocations_page(request: Request) -> Response:
    cfg = config_of(request)
    with Registry(cfg.database) as reg:
        signed = public.revocation_list(reg, request.app.state.signing_key)
    from conformity.signing import unverified_payload

    return page(request, "revocations.html", doc=unverified_payload(signed))


@router.get("/waves", response_class=HTMLResponse)
def waves(request: Request) -> Response:
    cfg = config_of(request)
    return page(request, "waves.html", waves=sorted(cfg.catalog.waves.values(), key=lambda w: w.id))


@router.get("/waves/{wave_id}/{category}", response_class=HTMLResponse)
def specification(request: Request, wave_id: str, category: str) -> Response:
    catalog = config_of(request).catalog
    try:
        spec = catalog.specification(wave_id, category)
    except InputError as exc:
        raise HTTPProblem(404, "no-such-specification", shown(exc).render()) from exc
    return HTMLResponse(spec_html(spec))


@router.get("/progress/{wave_id}", response_class=HTMLResponse)
def progress(request: Request, wave_id: str) -> Response:
    cfg = config_of(request)
    if wave_id not in cfg.catalog.waves:
        raise HTTPProblem(404, "no-such-wave", f"no wave {wave_id!r}")
    with Registry(cfg.database) as reg:
        p = wave_progress(cfg.catalog, reg, wave_id, cfg.ledger if cfg.ledger and cfg.ledger.exists() else None)
    return HTMLResponse(progress_html(p))


# ------------------------------------------------------------------------------------------------ sign-in
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/staff") -> Response:
    token = secrets.token_urlsafe(24)
    cfg = config_of(request)
    expired = bool(request.cookies.get(cookie_name(cfg, SESSION_COOKIE))) and current_session(request) is None
    response = page(request, "login.html", csrf=token, next=_local(next), expired=expired)
    response.set_cookie(cookie_name(cfg, LOGIN_CSRF_COOKIE), token, httponly=True, secure=cfg.secure_cookies,
                        samesite="strict", path="/")  # Path=/: a __Host- cookie's
    return response


def _set_session_cookie(response: Response, cfg: Any, sid: str) -> None:
    """The cookie of a new session (a sign-in, a password change)."""
    response.set_cookie(cookie_name(cfg, SESSION_COOKIE), sid, httponly=True, secure=cfg.secure_cookies,
                        samesite="strict", path="/", max_age=int(cfg.session_max.total_seconds()))


def _local(target: str) -> str:
    """Only a path of this site to go back to after signing in (never another site)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/staff"


@router.post("/login")
async def login(request: Request) -> Response:
    cfg = config_of(request)
    form = await form_of(request)
    if not accounts.same_secret(str(form.get("csrf", "")), request.cookies.get(cookie_name(cfg, LOGIN_CSRF_COOKIE), "")):
        raise HTTPProblem(403, "csrf", "the sign-in form expired or was not this site's: reload it and sign in again")
    login_name, password = str(form.get("login", "")).strip().lower()[:64], str(form.get("password", ""))[:1024]
    who, had = client(request), request.cookies.get(cookie_name(cfg, SESSION_COOKIE))

    def sign_in() -> tuple[accounts.Account, str, Session] | None:
        """Off the event loop (the password hash takes tens of milliseconds): the account and its new session, or None
        for a wrong login or password."""
        with Registry(cfg.database) as reg:
            pending, wait = accounts.attempt(reg.db, login_name, who, cfg.login_window, cfg.login_max_failures,
                                             cfg.client_max_failures)
            if wait is not None:
                audit.record(reg.db, login_name, "-", "login-throttled", login_name, f"retry in {wait} s", who)
                raise HTTPProblem(429, "too-many-attempts", f"too many failed sign-ins: try again in {wait} seconds",
                                  headers={"Retry-After": str(wait)})
            acct = accounts.check_password(reg.db, login_name, password, who, pending)
            if acct is None:
                audit.record(reg.db, login_name, "-", "login-failed", login_name, "wrong login or password", who)
                return None
            if had:  # the session this browser had ends: a sign-in starts a new one
                accounts.end_session(reg.db, had)
            try:
                sid, session = accounts.start_session(reg.db, acct, cfg.session_idle, cfg.session_max)
            except InputError as exc:  # disabled, or its password reset, since the password was checked
                audit.record(reg.db, acct.login, acct.role, "login-refused", acct.login, exc.render(), who)
                return None
            audit.record(reg.db, acct.login, acct.role, "login", acct.login, "", who)
        return acct, sid, session

    signed = await run_in_threadpool(sign_in)
    if signed is None:
        return page(request, "login.html", 401, csrf=form.get("csrf"), next=_local(str(form.get("next", ""))),
                    failed=True, login=login_name)
    acct, sid, session = signed
    target = "/vendor" if acct.role == "vendor" else _local(str(form.get("next", "/staff")))
    response = RedirectResponse("/password" if session.password_change_due else target, status_code=303)
    _set_session_cookie(response, cfg, sid)
    response.delete_cookie(cookie_name(cfg, LOGIN_CSRF_COOKIE), path="/", secure=cfg.secure_cookies, httponly=True,
                           samesite="strict")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = signed_in(request, changing_password=True)
    check_csrf(session, await form_of(request))
    cfg = config_of(request)
    with Registry(cfg.database) as reg:
        accounts.end_session(reg.db, request.cookies.get(cookie_name(cfg, SESSION_COOKIE), ""))
        audit.record(reg.db, session.account.login, session.account.role, "logout", session.account.login, "",
                     client(request))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(cookie_name(cfg, SESSION_COOKIE), path="/", secure=cfg.secure_cookies, httponly=True,
                           samesite="strict")
    return response


@router.get("/password", response_class=HTMLResponse)
def password_form(request: Request) -> Response:
    """Change one's password (the only page of a session whose password an admin set)."""
    session = signed_in(request, changing_password=True)
    return page(request, "password.html", due=session.password_change_due)


@router.post("/password")
async def change_password(request: Request) -> Response:
    """The signed-in person's password changed: every session of the account ends, this browser gets a new one."""
    session = signed_in(request, changing_password=True)
    form = await form_of(request)
    check_csrf(session, form)
    cfg, who, acct = config_of(request), client(request), session.account
    current, new, confirm = (str(form.get(k, "")) for k in ("current", "new", "confirm"))
    if any(len(f) > accounts.PASSWORD_MAX for f in (current, new, confirm)):
        raise HTTPProblem(422, "invalid-request", f"a password has at most {accounts.PASSWORD_MAX} characters")

    def change() -> str:
        with Registry(cfg.database) as reg:
            pending, wait = accounts.attempt(reg.db, acct.login, who, cfg.login_window, cfg.login_max_failures,
                                             cfg.client_max_failures)
            if wait is not None:
                audit.record(reg.db, acct.login, acct.role, "password-change-throttled", acct.login,
                             f"retry in {wait} s", who)
                raise HTTPProblem(429, "too-many-attempts", f"too many wrong passwords: try again in {wait} seconds",
                                  headers={"Retry-After": str(wait)})
            try:
                return accounts.change_password(reg.db, acct, current, new, confirm, who, pending,
                                                idle=cfg.session_idle, maximum=cfg.session_max,
                                                detail="set by an admin before" if session.password_change_due else "")
            except InputError as exc:
                audit.record(reg.db, acct.login, acct.role, "password-change-refused", acct.login, exc.render(), who)
                raise HTTPProblem(422, "invalid-request", exc.render()) from exc

    sid = await run_in_threadpool(change)
    response = RedirectResponse("/vendor" if acct.role == "vendor" else "/staff", status_code=303)
    _set_session_cookie(response, cfg, sid)
    return response


# ------------------------------------------------------------------------------------------------ vendors
@router.get("/vendor", response_class=HTMLResponse)
def vendor_home(request: Request) -> Response:
    session = signed_in(request, "submit")
    cfg, now = config_of(request), _now()
    assert session.account.vendor_id is not None
    mine = [(u, u.status(uploads.submission_of(cfg, u), now)) for u in uploads.of_vendor(cfg, session.account.vendor_id)]
    return page(request, "vendor.html", uploads=mine, max_upload=cfg.max_upload, witness=cfg.witness is not None,
                waves=sorted(cfg.catalog.waves.values(), key=lambda w: w.id))


@router.post("/vendor/witnessed")
async def vendor_witnessed(request: Request) -> Response:
    """The web form of ``POST /api/v1/witnessed-runs`` (wave and category in one field, evidence in rows)."""
    session = signed_in(request, "submit")
    cfg = config_of(request)
    if cfg.witness is None:
        raise HTTPProblem(503, "witnessed-runs-unavailable", "this agency does not run witnessed runs")
    form = await request.form(max_files=witnessed.MAX_EVIDENCE_FILES, max_fields=60)
    check_csrf(session, form)
    req, evidence = await witnessed.read_request(request, cfg)
    session = signed_in_again(request, "submit")  # again once the form is in (an account disabled meanwhile)
    up = await run_in_threadpool(witnessed.request_run, cfg, session.account, req, evidence, client(request))
    from conformity.agency.service.api import start_witnessed

    await start_witnessed(request, up)
    return RedirectResponse(f"/vendor/submissions/{up.id}", status_code=303)


@router.post("/vendor/upload")
async def vendor_upload(request: Request, background: BackgroundTasks) -> Response:
    session = signed_in(request, "submit")
    cfg = config_of(request)
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise HTTPProblem(411, "length-required", "the upload form must declare its length")
    if int(declared) > cfg.max_upload + 64 * 1024:
        raise HTTPProblem(413, "too-large", f"a bundle is at most {cfg.max_upload} bytes", max_bytes=cfg.max_upload)
    assert session.account.vendor_id is not None
    with uploads.streaming.slot(session.account.vendor_id, cfg.uploads_in_flight):
        with Registry(cfg.database) as reg:  # before the form is read (and again when it is recorded)
            uploads.check_room(cfg, session.account.vendor_id, reg.db)
        form = await request.form(max_files=1, max_fields=5)
        check_csrf(session, form)
        file = form.get("bundle")
        if file is None or isinstance(file, str):
            raise HTTPProblem(400, "no-file", "choose the bundle (a zip) to upload")

        async def chunks() -> Any:
            while chunk := await file.read(256 * 1024):
                yield chunk

        incoming, sha, size = await uploads.receive(chunks(), cfg, None)
        try:  # again once the form is in: an account disabled (its sessions ended) while it streamed takes nothing in
            session = signed_in_again(request, "submit")
        except BaseException:
            incoming.unlink(missing_ok=True)
            raise
        up = uploads.register(cfg, session.account, incoming, sha, size, file.filename or "bundle.zip",
                              client(request))
    from conformity.agency.service.api import start

    start(request, background, up)
    return RedirectResponse(f"/vendor/submissions/{up.id}", status_code=303)


@router.get("/vendor/submissions/{ident}", response_class=HTMLResponse)
def vendor_submission(request: Request, ident: str) -> Response:
    session = signed_in(request, "submit")
    cfg = config_of(request)
    up = uploads.get(cfg, ident, session.account.vendor_id)
    sub = uploads.submission_of(cfg, up)
    reviews = []
    if sub is not None:
        with Registry(cfg.database) as reg:
            reviews = reg.reviews(sub.id)
    return page(request, "vendor_submission.html", up=up, sub=sub, status=up.status(sub, _now()), reviews=reviews)


# ------------------------------------------------------------------------------------------------ staff
def _staff(request: Request, why: str) -> accounts.Session:
    """The signed-in staff member's session; a vendor account gets 403 with ``why``."""
    session = signed_in(request)
    if session.account.role == "vendor":
        raise HTTPProblem(403, "forbidden", why)
    return session


def _submission(reg: Registry, ident: str) -> Submission:
    """A submission by id, or 404."""
    try:
        return reg.get(ident)
    except InputError as exc:
        raise HTTPProblem(404, "no-such-submission", shown(exc).render()) from exc


@router.get("/staff", response_class=HTMLResponse)
def staff_home(request: Request) -> Response:
    session = signed_in(request)
    if session.account.role == "vendor":
        return RedirectResponse("/vendor", status_code=303)
    cfg, now = config_of(request), _now()
    me = session.account.reviewer_name
    with Registry(cfg.database) as reg:
        subs = reg.submissions(now=now)  # read once: the queue and the recent decisions
        queue = [(s, d, sum(1 for a in d.awaiting if a.accepted_by == me))
                 for s, d in staff_actions.review_queue(reg, cfg, now, subs)]
        recent = [s for s in subs if s.state != "pending"][-20:][::-1]
    return page(request, "staff.html", queue=queue, recent=recent, me=me)


def _submission_view(reg: Registry, cfg: Any, s: Submission, me: str) -> dict[str, Any]:
    now = _now()
    reviews = reg.reviews(s.id)
    preview = submit.preview(reg, s, cfg.catalog, now, cfg.same_person) if s.state == "pending" and s.identity is not None else None
    evidence = reg.evidence(s.id)
    awaiting = {a.id: a for a in (preview.awaiting if preview else ())}
    rows = [r.to_json() | {"files": [e for e in evidence if e.requirement == r.id], "awaiting": awaiting.get(r.id),
                           "reviews": [x for x in reviews if x.requirement == r.id]}
            for r in s.rows() if r.method in ("document", "manual")]
    return {"s": s, "preview": preview, "rows": rows, "history": reg.history(s.id, *( [s.label_id] if s.label_id else [])),
            "labels": reg.labels_of(s.id), "state": s.effective_state(now), "me": me,
            "failed": [r for r in s.rows() if r.method == "automated" and r.verdict not in ("pass", "not-applicable")],
            "inline": INLINE, "waivers": reg.waivers(s.id)}


@router.get("/staff/submissions/{ident}", response_class=HTMLResponse)
def staff_submission(request: Request, ident: str, done: str = "", mac: str = "") -> Response:
    session = _staff(request, "vendor accounts see their own submissions under /vendor")
    cfg = config_of(request)
    with Registry(cfg.database) as reg:
        s = _submission(reg, ident)
        view = _submission_view(reg, cfg, s, session.account.reviewer_name)
        entries = audit.entries(reg.db, s.id, 50)
    return page(request, "staff_submission.html", done=flash_text(session, done, mac), audit=entries,
                witnessed=uploads.witnessed_of(cfg, s.id), **view)


@router.get("/staff/evidence/{ident}/{sha256}")
def evidence(request: Request, ident: str, sha256: str) -> Response:
    """One evidence file, served so that it cannot act in the agency's origin (type, nosniff, sandboxing CSP)."""
    _staff(request, "evidence is read by the agency's staff")
    cfg = config_of(request)
    with Registry(cfg.database) as reg:
        s = _submission(reg, ident)
        files = [e for e in reg.evidence(s.id) if e.sha256 == sha256]
        if not files:
            raise HTTPProblem(404, "no-such-evidence", f"submission {s.id} bound no evidence file with SHA-256 {sha256}")
        data = reg.evidence_data(sha256)
    e = files[0]
    inline = e.media_type in INLINE
    media = e.media_type + ("; charset=utf-8" if e.media_type == "text/plain" else "") if inline \
        else "application/octet-stream"
    name = Path(e.file).name
    disposition = f"{'inline' if inline else 'attachment'}; filename=\"{re.sub(r'[^A-Za-z0-9._-]', '_', name)}\"; " \
                  f"filename*=UTF-8''{quote(name)}"
    return Response(data, media_type=media, headers={
        "Content-Disposition": disposition, "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": EVIDENCE_CSP, "Cache-Control": "private, no-store",
        "X-Frame-Options": "SAMEORIGIN", "Cross-Origin-Resource-Policy": "same-origin"})


def _back(session: Session, ident: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/staff/submissions/{quote(ident)}?{flash_query(session, done)}", status_code=303)


@router.post("/staff/submissions/{ident}/review")
async def review(request: Request, ident: str) -> Response:
    session = signed_in(request, "review")
    form = await form_of(request)
    check_csrf(session, form)
    requirements = [r for r in form.getlist("requirement") if isinstance(r, str)]
    done = await run_in_threadpool(staff_actions.review, config_of(request), session.account, ident, requirements,
                                   str(form.get("verdict", "")), str(form.get("reason", "")), client(request))
    return _back(session, done.submission, done.what)


@router.post("/staff/submissions/{ident}/decide")
async def decide_page(request: Request, ident: str) -> Response:
    session = signed_in(request, "decide")
    form = await form_of(request)
    check_csrf(session, form)
    waive = tuple(w for w in re.split(r"[\s,]+", str(form.get("waive", ""))) if w)
    done = await run_in_threadpool(staff_actions.decide, config_of(request), session.account, ident, waive,
                                   str(form.get("waive_reason", "")), client(request))
    return _back(session, done.submission, done.what)


@router.post("/staff/labels/{label_id}/{action}")
async def revoke_or_reinstate(request: Request, label_id: str, action: str) -> Response:
    session = signed_in(request, "decide")
    form = await form_of(request)
    check_csrf(session, form)
    done = await run_in_threadpool(staff_actions.revoke_or_reinstate, config_of(request), session.account, label_id,
                                   action, str(form.get("reason", "")), client(request))
    return _back(session, done.submission, done.what)


@router.get("/staff/audit", response_class=HTMLResponse)
def audit_page(request: Request, subject: str = "") -> Response:
    _staff(request, "the audit log is the agency's")
    with Registry(config_of(request).database) as reg:
        entries = audit.entries(reg.db, subject or None, 500)
        events = feed.last_seq(reg.db)
    return page(request, "audit.html", entries=entries, subject=subject, events=events)
