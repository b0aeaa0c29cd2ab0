"""The admin's page of accounts: create staff and vendor accounts, disable and enable them, rotate vendors' tokens,
set a password someone lost (its owner changes it at the next sign-in, like a new account's).

Every change is an audit entry (refusals too); forms carry the session's CSRF token; a new token is
shown once, on the answer to the form that made it (never stored, never in a URL).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from conformity.agency.registry import Registry
from conformity.agency.service import accounts, audit
from conformity.agency.service.config import ServiceConfig
from conformity.agency.service.deps import check_csrf, client, config_of, flash_query, flash_text, signed_in
from conformity.agency.service.problems import HTTPProblem, from_input_error
from conformity.errors import InputError

router = APIRouter(prefix="/staff/admin", include_in_schema=False)


def _page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    from conformity.agency.service.web import page

    with Registry(config_of(request).database) as reg:
        rows = accounts.all_accounts(reg.db)
    response = page(request, "admin_accounts.html", status, accounts=rows,
                    roles=[r for r in accounts.ROLES if r not in accounts.PROTECTED_ROLES],
                    **{"done": "", "token": None, "login": "", **context})
    if context.get("token"):
        response.headers["Cache-Control"] = "no-store"  # a secret shown once
    return response


@router.get("/accounts", response_class=HTMLResponse)
def accounts_page(request: Request, done: str = "", mac: str = "") -> Response:
    session = signed_in(request, "admin")
    return _page(request, done=flash_text(session, done, mac))


def _create(cfg: ServiceConfig, actor: accounts.Account, form: Any, who: str) -> tuple[accounts.Account, str | None]:
    by = accounts.Actor(actor.login, actor.role, who)
    login, role = str(form.get("login", "")).strip().lower(), str(form.get("role", ""))
    name, vendor_id = str(form.get("name", "")), str(form.get("vendor_id", "")).strip() or None
    password = str(form.get("password", "")) or None
    with Registry(cfg.database) as reg:
        try:
            if role in accounts.PROTECTED_ROLES:  # its temporary password would let its creator sign in as it first
                raise InputError(f"an {role} account is created on the agency's server (usine agency account add "
                                 f"--role {role} --password-stdin --temporary), never on the web, where the admin "
                                 "who typed its password could sign in as that new admin before its owner",
                                 where="role")
            acct = accounts.create_account(reg.db, login, name, role, vendor_id=vendor_id, password=password,
                                           temporary=True, by=by)
        except InputError as exc:
            audit.record(reg.db, actor.login, actor.role, "account-refused", login[:64], exc.render(), who)
            raise from_input_error(exc) from exc
        token = None
        if acct.role == "vendor" and form.get("issue_token"):
            token = accounts.create_token(reg.db, acct, "first token", by=by)
    return acct, token


@router.post("/accounts")
async def create(request: Request) -> Response:
    session = signed_in(request, "admin")
    form = await request.form(max_files=0, max_fields=20)
    check_csrf(session, form)
    acct, token = await run_in_threadpool(_create, config_of(request), session.account, form, client(request))
    if token is not None:
        return _page(request, done=f"account {acct.login} created", token=token, login=acct.login)
    return RedirectResponse(f"/staff/admin/accounts?{flash_query(session, f'account {acct.login} created')}",
                            status_code=303)


def _act(cfg: ServiceConfig, actor: accounts.Account, login: str, action: str, who: str,
         password: str = "") -> tuple[str, str | None]:
    by = accounts.Actor(actor.login, actor.role, who)
    with Registry(cfg.database) as reg:
        try:
            # each action is audited in its own transaction, with the change it made
            if action == "reset-password":
                return accounts.set_temporary_password(reg.db, login, password, by), None
            if action in ("disable", "enable"):
                if action == "disable" and login == actor.login:
                    raise InputError("you cannot disable your own account (another admin can)", where="account")
                return accounts.set_disabled(reg.db, login, action == "disable", by), None
            if action == "rotate-token":
                acct = accounts.account(reg.db, login)
                if acct is None:
                    raise InputError(f"no active account {login!r} (enable it first)", where="account")
                if acct.role != "vendor":  # a token shown here would let its reader act as that staff member
                    raise InputError(f"{login} is a {acct.role}: a staff member's token is issued to them, never shown "
                                     f"to another person (usine agency account token {login}, on the agency's "
                                     "server); this page issues vendors' tokens", where="account")
                token, what = accounts.rotate_token(reg.db, acct, "rotated", by)
                return what, token
            raise HTTPProblem(404, "not-found", f"no action {action!r} on accounts (disable, enable, rotate-token, "
                                                    "reset-password)")
        except InputError as exc:
            audit.record(reg.db, actor.login, actor.role, f"account-{action}-refused", login[:64], exc.render(), who)
            raise from_input_error(exc) from exc


@router.post("/accounts/{login}/{action}")
async def account_action(request: Request, login: str, action: str) -> Response:
    session = signed_in(request, "admin")
    form = await request.form(max_files=0, max_fields=5)
    check_csrf(session, form)
    what, token = await run_in_threadpool(_act, config_of(request), session.account, login, action, client(request),
                                          str(form.get("password", "")))
    if token is not None:
        return _page(request, done=f"{login}: {what}", token=token, login=login)
    return RedirectResponse(f"/staff/admin/accounts?{flash_query(session, f'{login}: {what}')}", status_code=303)
