"""Accounts (vendors and staff), API tokens, web sessions and login throttling.

Passwords are stored as argon2id hashes (argon2-cffi's defaults, RFC 9106); API tokens and session ids
are 256-bit random secrets of which only the SHA-256 is stored, so a copy of the database lets no one
in. A session has an idle and an absolute lifetime and its own CSRF token; a login is refused without
even checking the password once a login name or a client address failed too often in the window.
Roles: ``vendor`` (its own submissions only), ``reviewer`` (reviews evidence), ``decider`` (decides,
waives, revokes, reinstates), ``admin`` (everything, accounts).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from conformity.agency.persons import person_name
from conformity.agency.registry import iso
from conformity.agency.service import audit
from conformity.db.connection import Connection
from conformity.errors import InputError

Role = Literal["vendor", "reviewer", "decider", "admin"]
ROLES: tuple[Role, ...] = ("vendor", "reviewer", "decider", "admin")
SCOPES = ("submit", "read")  # a vendor token's (its own submissions)
#: the scopes a token of each role may carry (a staff token acts as its person, through ``/api/v1/staff``)
ROLE_SCOPES: dict[str, tuple[str, ...]] = {"vendor": SCOPES, "reviewer": ("review",), "decider": ("decide",),
                                           "admin": ("review", "decide", "admin")}
LOGIN = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
TOKEN_PREFIX = "usn_"
_hasher = PasswordHasher()  # argon2id
#: a hash to verify against when the login is unknown, so timing does not tell which logins exist
_DUMMY = _hasher.hash(secrets.token_hex(16))


#: what an account may be allowed to do (its role decides; a staff token's scopes narrow it)
Action = Literal["review", "decide", "admin", "submit"]


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    login: str
    name: str
    role: Role
    vendor_id: str | None
    #: what the request was authenticated with, ("token" | "session", its SHA-256; "password": the SHA-256 of the hash
    #: the password was checked against): checked again, with the account, inside an action's own transaction
    #: (:func:`still_signed_in`); None: not a request's (the command line)
    via: tuple[str, str] | None = field(default=None, compare=False)

    @property
    def reviewer_name(self) -> str:
        """How reviews and decisions name this person (the login keeps two people with one name apart)."""
        return person_name(self.name, self.login)

    def can(self, action: Action) -> bool:
        if self.role == "admin":
            return action != "submit"
        return {"review": self.role == "reviewer", "decide": self.role == "decider",
                "submit": self.role == "vendor", "admin": False}[action]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who changes an account, for the audit entry written in the change's own transaction (the change and its entry
    are committed together or not at all)."""

    login: str
    role: str
    client: str = ""
    #: a person's account (an admin on the web); False: the server's operator, who holds the registry anyway and whose
    #: passwords bind no one for the four-eyes rule (conformity.agency.persons)
    person: bool = True

    def sets_password(self, when: str) -> tuple[str | None, str | None]:
        """(password_set_by, password_set_at) for a password this actor sets for another account."""
        return (self.login, when) if self.person else (None, None)


#: the server's command line (``usine agency account …``)
OPERATOR = Actor("cli", "admin", "command line", person=False)


@dataclass(frozen=True, slots=True)
class Session:
    account: Account
    csrf: str
    expires: str
    #: the account's password was set by someone else: the session may only change it (or sign out)
    password_change_due: bool = False


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_COLUMNS = "a.id, a.login, a.name, a.role, a.vendor_id"


#: the longest password read (a longer one is refused, never cut)
PASSWORD_MAX = 1024


def password_problems(password: str) -> list[str]:
    """What is wrong with a new password (nothing: an empty list)."""
    if len(password) < 12:
        return ["a password has at least 12 characters"]
    if len(password) > PASSWORD_MAX:
        return [f"a password has at most {PASSWORD_MAX} characters"]
    return []


def create_account(db: Connection, login: str, name: str, role: str, *, vendor_id: str | None = None,
                   password: str | None = None, temporary: bool = False, by: Actor | None = None) -> Account:
    """A new account (InputError, nothing written: bad login, role, short password, login taken).

    ``temporary``: the password is set by someone else than its owner (an admin): the owner changes it at the first
    sign-in, before anything else. ``by``: who creates it, audited in the same transaction."""
    problems = []
    if not LOGIN.match(login):
        problems.append("a login is 2-64 lower-case letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        problems.append(f"a role is one of {', '.join(ROLES)}, not {role!r}")
    if (role == "vendor") != bool(vendor_id):
        problems.append("a vendor account names its vendor id (--vendor), a staff account none")
    if not name.strip() or len(name) > 200:
        problems.append("a name is 1-200 characters")
    if password is not None:
        problems += password_problems(password)
    if role != "vendor" and password is None:
        problems.append("a staff account needs a password (it signs in on the web)")
    if problems:
        raise InputError("; ".join(problems), where="account")
    with db.write():
        if db.execute("SELECT 1 FROM accounts WHERE login = ?", (login,)).fetchone():
            raise InputError(f"login {login!r} is taken", where="account")
        now = iso(_now())
        set_by = by.sets_password(now) if by is not None and password else (None, None)
        ident = db.execute("INSERT INTO accounts (login, name, role, vendor_id, password_hash, created, "
                           "password_change_due, password_set_by, password_set_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                           "RETURNING id",
                           (login, name.strip(), role, vendor_id, _hasher.hash(password) if password else None,
                            now, now if password and temporary else None, *set_by)).fetchone()[0]
        if by is not None:
            audit.record(db, by.login, by.role, "account-created", login,
                         f"{role} {name.strip()}" + (f" vendor {vendor_id}" if vendor_id else ""), by.client)
    return Account(int(ident), login, name.strip(), role, vendor_id)  # type: ignore[arg-type]  # role checked against ROLES above


def account(db: Connection, login: str) -> Account | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM accounts a WHERE a.login = ? AND a.disabled IS NULL", (login,)).fetchone()
    return Account(*row) if row else None


def create_token(db: Connection, acct: Account, name: str, scopes: tuple[str, ...] | None = None,
                 days: int | None = 365, *, by: Actor | None = None) -> str:
    """A new API token (shown once; only its SHA-256 is kept), with scopes its account's role allows (default all);
    ``by``: who issues it, audited in the same transaction."""
    with db.write():
        token = _insert_token(db, acct, name, scopes, days)
        if by is not None:
            audit.record(db, by.login, by.role, "token-issued", acct.login,
                         f"{name}: {' '.join(sorted(scopes or ROLE_SCOPES[acct.role]))}, "
                         + (f"{days} days" if days else "no expiry"), by.client)
        return token


def _insert_token(db: Connection, acct: Account, name: str, scopes: tuple[str, ...] | None, days: int | None) -> str:
    """Inside the caller's transaction: the token, for an account still active (one disabled since it was read gets
    none: enabling it again brings no token back)."""
    if db.execute("SELECT 1 FROM accounts WHERE id = ? AND disabled IS NULL", (acct.id,)).fetchone() is None:
        raise InputError(f"account {acct.login} is disabled: it gets no token (enable it first)", where="account")
    allowed = ROLE_SCOPES[acct.role]
    scopes = tuple(scopes) if scopes else allowed
    bad = sorted(set(scopes) - set(allowed))
    if bad:
        raise InputError(f"a {acct.role} token's scopes are among {', '.join(allowed)} (not {', '.join(bad)})",
                         where="--scope")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = iso(_now() + dt.timedelta(days=days)) if days else None
    db.execute("INSERT INTO api_tokens (account, token_sha256, name, scopes, created, expires) "
               "VALUES (?, ?, ?, ?, ?, ?)", (acct.id, _sha(token), name[:200], " ".join(sorted(scopes)), iso(_now()),
                                             expires))
    return token


def token_account(db: Connection, token: str) -> tuple[Account, frozenset[str]] | None:
    """The account and scopes of a valid token (not revoked, not expired, account active)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = db.execute(f"SELECT {_COLUMNS}, t.scopes, t.expires, t.revoked FROM api_tokens t JOIN accounts a "
                     "ON a.id = t.account WHERE t.token_sha256 = ? AND a.disabled IS NULL", (_sha(token),)).fetchone()
    if row is None or row[7] is not None or (row[6] is not None and row[6] <= iso(_now())):
        return None
    return Account(row[0], row[1], row[2], row[3], row[4], via=("token", _sha(token))), frozenset(row[5].split())


# ------------------------------------------------------------------------------------------------ web sign-in
#: how long a client address a login signed in from stays one it is not locked out of by others' failures
KNOWN_CLIENT = dt.timedelta(days=90)


def throttled(db: Connection, login: str, client: str, window: dt.timedelta, per_login: int,
              per_client: int) -> int | None:
    """Seconds to wait when this login or client failed too often in the window; None when it may try.

    A login that failed ``per_login`` times waits, from the address of those failures and from any address it never
    signed in from (a guess spread over addresses); not from an address it signed in from before (within
    ``KNOWN_CLIENT``, the audit log's sign-ins, found by their subject: the login): others' wrong passwords do not
    lock a person out of where they work.
    """
    since = iso(_now() - window)
    known = db.execute("SELECT 1 FROM audit WHERE subject = ? AND action = 'login' AND client = ? AND at > ? LIMIT 1",
                       (login, client, iso(_now() - KNOWN_CLIENT))).fetchone() is not None
    by_login = db.execute("SELECT count(*), min(at) FROM login_failures WHERE login = ? AND at > ?"
                          + (" AND client = ?" if known else ""), (login, since, *((client,) if known else ()))
                          ).fetchone()
    by_client = db.execute("SELECT count(*), min(at) FROM login_failures WHERE client = ? AND at > ?",
                           (client, since)).fetchone()
    for (count, first), limit in ((by_login, per_login), (by_client, per_client)):
        if count >= limit:
            retry = dt.datetime.fromisoformat(first.replace("Z", "+00:00")) + window - _now()
            return max(1, int(retry.total_seconds()))
    return None


def attempt(db: Connection, login: str, client: str, window: dt.timedelta, per_login: int,
            per_client: int) -> tuple[int | None, int | None]:
    """Count a password attempt before its password is checked: ``(pending, None)``, the failure it is until
    :func:`check_password` says otherwise, or ``(None, seconds to wait)`` when this login or client failed too often
    (:func:`throttled`, this attempt included; nothing is kept). Counted first, attempts sent at once — to several
    workers, or threads of one — see each other: checked then recorded, they all passed the throttle before any of
    their failures was written."""
    with db.write():
        pending = int(db.execute("INSERT INTO login_failures (login, client, at) VALUES (?, ?, ?) RETURNING id",
                                 (login[:64], client, iso(_now()))).fetchone()[0])
    wait = throttled(db, login, client, window, per_login + 1, per_client + 1)
    if wait is not None:
        with db.write():
            db.execute("DELETE FROM login_failures WHERE id = ?", (pending,))
        return None, wait
    return pending, None


def check_password(db: Connection, login: str, password: str, client: str, pending: int | None = None) -> Account | None:
    """The account when the password is right; a failure is recorded (for throttling) otherwise — ``pending``, the
    failure :func:`attempt` counted already, is kept as the failure, or taken back when the password is right."""
    row = db.execute(f"SELECT {_COLUMNS}, a.password_hash FROM accounts a WHERE a.login = ? AND a.disabled IS NULL",
                     (login,)).fetchone()
    stored = row[5] if row and row[5] else _DUMMY
    try:
        ok = _hasher.verify(stored, password) and row is not None and row[5] is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        if pending is None:
            with db.write():
                db.execute("INSERT INTO login_failures (login, client, at) VALUES (?, ?, ?)",
                           (login[:64], client, iso(_now())))
        return None
    if pending is not None:
        with db.write():
            db.execute("DELETE FROM login_failures WHERE id = ?", (pending,))
    if _hasher.check_needs_rehash(stored):
        stored = _hasher.hash(password)
        with db.write():
            db.execute("UPDATE accounts SET password_hash = ? WHERE id = ?", (stored, row[0]))
    return Account(row[0], row[1], row[2], row[3], row[4], via=("password", _sha(stored)))


def start_session(db: Connection, acct: Account, idle: dt.timedelta, maximum: dt.timedelta) -> tuple[str, Session]:
    """A new session (its secret id for the cookie, and the session); InputError, none started, when the account was
    disabled or its password changed since it was checked (:func:`still_signed_in`, inside the transaction): a
    disable or a reset ends every session, including one being started."""
    with db.write():
        if not still_signed_in(db, acct):
            raise InputError(f"the account {acct.login} was disabled or its password changed while signing in: sign in "
                             "again", where="account")
        return _insert_session(db, acct, idle, maximum)


def _insert_session(db: Connection, acct: Account, idle: dt.timedelta, maximum: dt.timedelta) -> tuple[str, Session]:
    """:func:`start_session` inside the caller's transaction."""
    sid, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), _now()
    expires = iso(min(now + idle, now + maximum))
    db.execute("INSERT INTO web_sessions (id_sha256, account, csrf, created, last_seen, expires) "
               "VALUES (?, ?, ?, ?, ?, ?)", (_sha(sid), acct.id, csrf, iso(now), iso(now), expires))
    due = db.execute("SELECT password_change_due FROM accounts WHERE id = ?", (acct.id,)).fetchone()[0]
    return sid, Session(acct, csrf, expires, due is not None)


def change_password(db: Connection, acct: Account, current: str, new: str, confirm: str, client: str,
                    pending: int | None = None, *, idle: dt.timedelta, maximum: dt.timedelta,
                    detail: str = "") -> str:
    """The account's own password changed (InputError, nothing changed: the current one wrong — a failure counted
    like a sign-in's, ``pending`` the one :func:`attempt` counted —, the new one too short, not confirmed, the same,
    or the password set meanwhile by someone else); the secret id of the browser's new session.

    One transaction: the new hash, every session of the account ended, the audit entry and the new session — a crash
    anywhere in between leaves the old password and sessions as they were. The account's API tokens stay: a password
    mints none (admins or the server's operator issue them), so whoever knew the old one holds no token by it; a
    reset or a disable revokes them."""
    before = db.execute("SELECT password_hash FROM accounts WHERE id = ?", (acct.id,)).fetchone()
    if check_password(db, acct.login, current, client, pending) is None:
        raise InputError("the current password is wrong", where="current password")
    problems = password_problems(new)
    if new != confirm:
        problems.append("the new password and its confirmation differ")
    if new == current:
        problems.append("the new password is the current one: choose another")
    if problems:
        raise InputError("; ".join(problems), where="new password")
    hashed = _hasher.hash(new)  # before the write lock: tens of milliseconds no other writer waits for
    with db.write():
        ended, _ = _set_password(db, acct.id, hashed, due=False, expected=before[0] if before else None,
                                 revoke=False)
        audit.record(db, acct.login, acct.role, "password-changed", acct.login,
                     "; ".join(filter(None, (detail, f"{ended} session(s) ended"))), client)
        sid, _ = _insert_session(db, acct, idle, maximum)
    return sid


#: the roles whose password an admin may not set on the web (an admin's: its reset is the server operator's,
#: ``usine agency account reset-password``, so that no admin signs in as another)
PROTECTED_ROLES = frozenset({"admin"})


def set_temporary_password(db: Connection, login: str, password: str, by: Actor, *,
                           protected_too: bool = False) -> str:
    """An admin sets an account's password (a person who lost theirs): its sessions end, its API tokens are revoked
    and its owner changes the password at the next sign-in; the audit entry, naming ``by``, is in the same
    transaction. What was done (InputError, nothing changed: no such account, too short, one's own, or an admin's
    unless ``protected_too`` — the server's command line)."""
    ident, _ = _any_account(db, login)
    role = db.execute("SELECT role FROM accounts WHERE id = ?", (ident,)).fetchone()[0]
    if login == by.login:
        raise InputError("change your own password on your password page (it asks for the current one)",
                         where="account")
    if role in PROTECTED_ROLES and not protected_too:
        raise InputError(f"{login} is an admin: an admin's password is set on the agency's server (usine agency "
                         "account reset-password), never by another admin on the web, who could then sign in as them",
                         where="account")
    problems = password_problems(password)
    if problems:
        raise InputError("; ".join(problems), where="password")
    hashed = _hasher.hash(password)
    with db.write():
        ended, revoked = _set_password(db, ident, hashed, due=True, set_by=by)
        what = (f"temporary password set by {by.login}; {ended} session(s) ended, {revoked} API token(s) revoked; "
                "changed by its owner at the next sign-in")
        audit.record(db, by.login, by.role, "account-reset-password", login, what, by.client)
    return what


def _set_password(db: Connection, ident: int, hashed: str, *, due: bool,
                  expected: str | None = None, revoke: bool = True, set_by: Actor | None = None) -> tuple[int, int]:
    """Inside the caller's transaction: the new hash, the account's sessions ended and, with ``revoke``, its API
    tokens revoked (sessions ended, tokens revoked). ``expected``: the hash the change was checked against (InputError, the
    transaction rolled back by the caller, when another change came first). ``set_by``: who set it for the account (a
    reset: recorded as its setter, or none for the server's operator); None: its owner (the setter is kept — the owner's
    change may have been the setter's)."""
    now = iso(_now())
    if set_by is not None:
        db.execute("UPDATE accounts SET password_set_by = ?, password_set_at = ? WHERE id = ?",
                   (*set_by.sets_password(now), ident))
    if expected is not None:
        changed = db.execute("UPDATE accounts SET password_hash = ?, password_change_due = ? WHERE id = ? AND "
                             "password_hash = ? RETURNING id", (hashed, now if due else None, ident, expected)
                             ).fetchall()
        if not changed:
            raise InputError("the password was set meanwhile (by an admin, or in another browser): nothing changed, try again",
                             where="current password")
    else:
        db.execute("UPDATE accounts SET password_hash = ?, password_change_due = ? WHERE id = ?",
                   (hashed, now if due else None, ident))
    return _end_sessions(db, ident, now), _revoke_tokens(db, ident, now) if revoke else 0


def _end_sessions(db: Connection, ident: int, now: str) -> int:
    """Inside the caller's transaction: every live web session of the account ended; how many."""
    return len(db.execute("UPDATE web_sessions SET ended = ? WHERE account = ? AND ended IS NULL RETURNING id_sha256",
                          (now, ident)).fetchall())


def _revoke_tokens(db: Connection, ident: int, now: str) -> int:
    """Inside the caller's transaction: every API token of the account revoked; how many were live."""
    return len(db.execute("UPDATE api_tokens SET revoked = ? WHERE account = ? AND revoked IS NULL RETURNING id",
                          (now, ident)).fetchall())


#: how often a session's idle expiry is pushed forward (a write): at most once a minute, not on every request
TOUCH_EVERY = dt.timedelta(minutes=1)


def session(db: Connection, sid: str, idle: dt.timedelta, maximum: dt.timedelta) -> Session | None:
    """The live session of a cookie (its idle expiry pushed forward), or None (unknown, ended, expired).

    The idle expiry moves at most once per ``TOUCH_EVERY``: a page is a read, not a write transaction
    (an fsync and the database's write lock) on every request; a session may so end up to that much
    earlier than ``idle`` after its last use, never later.
    """
    if not sid or len(sid) > 200:
        return None
    row = db.execute(f"SELECT {_COLUMNS}, s.csrf, s.created, s.expires, s.last_seen, a.password_change_due "
                     "FROM web_sessions s JOIN accounts a "
                     "ON a.id = s.account WHERE s.id_sha256 = ? AND s.ended IS NULL AND a.disabled IS NULL",
                     (_sha(sid),)).fetchone()
    now = _now()
    if row is None or row[7] <= iso(now):
        return None
    expires = row[7]
    if row[8] <= iso(now - TOUCH_EVERY):
        created = dt.datetime.fromisoformat(row[6].replace("Z", "+00:00"))
        expires = iso(min(now + idle, created + maximum))
        with db.write():
            db.execute("UPDATE web_sessions SET last_seen = ?, expires = ? WHERE id_sha256 = ?",
                       (iso(now), expires, _sha(sid)))
    return Session(Account(row[0], row[1], row[2], row[3], row[4], via=("session", _sha(sid))), row[5], expires, row[9] is not None)


def still_signed_in(db: Connection, acct: Account) -> bool:
    """Whether the account is still active with its role and, when it came with a request, what the request was
    authenticated with is still live (a session not ended, a token not revoked): read inside an action's own
    transaction, since a disable or a password reset (which end both) may have committed while the action waited."""
    row = db.execute("SELECT role FROM accounts WHERE id = ? AND disabled IS NULL", (acct.id,)).fetchone()
    if row is None or row[0] != acct.role:
        return False
    if acct.via is None:
        return True
    kind, sha = acct.via
    if kind == "password":
        stored = db.execute("SELECT password_hash FROM accounts WHERE id = ?", (acct.id,)).fetchone()[0]
        return stored is not None and hmac.compare_digest(_sha(stored), sha)
    sql = ("SELECT 1 FROM web_sessions WHERE id_sha256 = ? AND account = ? AND ended IS NULL" if kind == "session" else
           "SELECT 1 FROM api_tokens WHERE token_sha256 = ? AND account = ? AND revoked IS NULL")
    return db.execute(sql, (sha, acct.id)).fetchone() is not None


def end_session(db: Connection, sid: str) -> None:
    with db.write():
        db.execute("UPDATE web_sessions SET ended = ? WHERE id_sha256 = ? AND ended IS NULL", (iso(_now()), _sha(sid)))


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets (CSRF tokens)."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


# ------------------------------------------------------------------------------------------------ administration
@dataclass(frozen=True, slots=True)
class AccountRow:
    """An account as the admin page lists it."""

    login: str
    name: str
    role: str
    vendor_id: str | None
    created: str
    disabled: str | None
    tokens: int  # active API tokens


def all_accounts(db: Connection) -> list[AccountRow]:
    now = iso(_now())
    rows = db.execute("SELECT a.login, a.name, a.role, a.vendor_id, a.created, a.disabled, "
                      "(SELECT count(*) FROM api_tokens t WHERE t.account = a.id AND t.revoked IS NULL "
                      "AND (t.expires IS NULL OR t.expires > ?)) FROM accounts a ORDER BY a.role, a.login",
                      (now,)).fetchall()
    return [AccountRow(*r) for r in rows]


def _any_account(db: Connection, login: str) -> tuple[int, bool]:
    row = db.execute("SELECT id, disabled FROM accounts WHERE login = ?", (login,)).fetchone()
    if row is None:
        raise InputError(f"no account {login!r}", where="account")
    return int(row[0]), row[1] is not None


def set_disabled(db: Connection, login: str, disabled: bool, by: Actor) -> str:
    """Disable an account (its sessions end, its API tokens are revoked: enabling it again brings none back) or enable
    it again; what was done, audited in the same transaction (``already disabled``: nothing changed)."""
    action = "disable" if disabled else "enable"
    now = iso(_now())
    with db.write():  # read in the transaction: two admins at once, the second is told, nothing written twice
        ident, was = _any_account(db, login)
        if was == disabled:
            return f"already {action}d"
        db.execute("UPDATE accounts SET disabled = ? WHERE id = ?", (now if disabled else None, ident))
        what = "enabled (its former API tokens stay revoked: issue a new one)"
        if disabled:
            what = (f"disabled; {_end_sessions(db, ident, now)} session(s) ended, {_revoke_tokens(db, ident, now)} "
                    "API token(s) revoked")
        audit.record(db, by.login, by.role, f"account-{action}", login, what, by.client)
    return what


def rotate_token(db: Connection, acct: Account, name: str, by: Actor, days: int = 365) -> tuple[str, str]:
    """A new token for the account (every scope of its role); every token it had is revoked; audited (naming ``by``)
    in the same transaction. (token, what was done)."""
    now = iso(_now())
    with db.write():
        revoked = _revoke_tokens(db, acct.id, now)
        token = _insert_token(db, acct, name, None, days)
        what = f"new token issued, {revoked} revoked"
        audit.record(db, by.login, by.role, "account-rotate-token", acct.login, what, by.client)
    return token, what
