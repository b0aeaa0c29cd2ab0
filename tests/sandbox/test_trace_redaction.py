"""A secret the sandbox issued never enters a trace, wherever the software puts it; a string merely shaped like one
stays as the software sent it — on SQLite and on PostgreSQL.

The usual exchange holds secret-shaped strings (a document's base64 has runs of 43 letters and digits): its text is
appended in the same statement that looks them up among the issued tokens (``Store.append_exchange_text_unless_issued``),
and only an exchange holding an issued one is redacted and written the slow way.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sandbox.app import create_app
from sandbox.config import SandboxConfig
from sandbox.credentials import secret_hash
from sandbox.packs.health import samples
from sandbox.store import Store, dump_own

ADMIN = "trace-redaction-admin-token-0123456789"


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    database = request.getfixturevalue("postgresql_url") if request.param == "postgresql" else None
    with TestClient(create_app(SandboxConfig(data_dir=tmp_path, admin_token=ADMIN, database=database))) as c:
        yield c


def test_an_issued_token_in_a_submitted_text_is_redacted_and_a_look_alike_kept(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    session = client.post("/admin/sessions", json={"seed": 4, "pack": "health"},
                          headers={"Authorization": f"Bearer {ADMIN}"}).json()
    sid, fixtures = session["session_id"], session["fixtures"]
    national_id = fixtures["practitioners"][0]["national_id"]
    bearer = samples.issue_access_token(store, sid, national_id)
    other = samples.issue_access_token(store, "ses_elsewhere", national_id)  # issued, another session's
    look_alike = secrets.token_urlsafe(32)  # secret-shaped, never issued
    usual = samples.session_submission(fixtures)
    leaking = samples.session_submission(fixtures, patient=1)
    leaking["metadata"]["title"] = f"Compte rendu {other} ; {look_alike}"
    for body in (usual, leaking):
        client.post(f"/s/{sid}/dmp/documents", json=body, headers={"Authorization": f"Bearer {bearer}"})

    first, second = store.exchanges(sid)
    assert first["request"]["body"]["json"]["document"] == usual["document"]  # the usual one: stored as sent
    text = json.dumps(second, ensure_ascii=False)
    assert other not in text and bearer not in text
    title = second["request"]["body"]["json"]["metadata"]["title"]
    assert title == f"Compte rendu [redacted sha256:{secret_hash(other)[:16]}] ; {look_alike}"


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_text_is_appended_unless_a_digest_is_an_issued_token(engine: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    from sandbox.store import open_store

    url = request.getfixturevalue("postgresql_url") if engine == "postgresql" else None
    store, other = open_store(url, tmp_path / "s.sqlite3"), open_store(url, tmp_path / "s.sqlite3")
    try:
        store.put_session({"id": "ses_a", "state": "open"})  # an exchange is a stored session's only
        store.put_token("t" * 43, "access", "ses_a", {}, ttl=60)
        store.put_token("e" * 43, "access", "ses_b", {}, ttl=-1)  # expired: still a secret it issued
        issued, expired, stranger = (secret_hash(c * 43) for c in "teu")
        assert store.append_exchange_text_unless_issued("ses_a", dump_own({"kind": "a"}), []) == 1
        assert other.append_exchange_text_unless_issued("ses_a", dump_own({"kind": "b"}), [stranger]) == 2
        assert store.append_exchange_text_unless_issued("ses_a", dump_own({"kind": "c"}), [stranger, issued]) is None
        assert other.append_exchange_text_unless_issued("ses_c", dump_own({"kind": "d"}), {expired: "e"}) is None
        assert [e["kind"] for e in other.exchanges("ses_a")] == ["a", "b"] and store.exchanges("ses_c") == []
        assert store.append_exchange_text_unless_issued("ses_a", dump_own({"kind": "e"}), [stranger] * 3) == 3
    finally:
        store.close()
        other.close()
