"""A practitioner's client on a session's shared record (the sandbox's DMP), shared by the sandbox tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from sandbox.packs.health import samples
from sandbox.server import RunningSandbox


def token_for(server: RunningSandbox, session: dict[str, Any], practitioner: int = 0, **kw: Any) -> str:
    store = server.server.config.app.state.store
    return samples.issue_access_token(store, session["session_id"],
                                      session["fixtures"]["practitioners"][practitioner]["national_id"], **kw)


class Dmp:
    """A practitioner's client on one session's shared record."""

    def __init__(self, http: httpx.Client, session: dict[str, Any], token: str):
        self.http, self.session, self.sid = http, session, session["session_id"]
        self.headers = {"Authorization": f"Bearer {token}"}

    @property
    def base(self) -> str:
        return f"/s/{self.sid}/dmp"

    def submit(self, body: dict[str, Any], *, path: str = "/documents") -> httpx.Response:
        return self.http.post(self.base + path, json=body, headers=self.headers)

    def replace(self, unique_id: str, body: dict[str, Any]) -> httpx.Response:
        return self.submit(body, path=f"/documents/{quote(unique_id, safe='')}/replace")

    def get(self, unique_id: str) -> httpx.Response:
        return self.http.get(f"{self.base}/documents/{quote(unique_id, safe='')}", headers=self.headers)

    def delete(self, unique_id: str) -> httpx.Response:
        return self.http.delete(f"{self.base}/documents/{quote(unique_id, safe='')}", headers=self.headers)

    def hide(self, unique_id: str) -> httpx.Response:
        return self.http.post(f"{self.base}/documents/{quote(unique_id, safe='')}/hide", headers=self.headers)

    def listing(self, patient_id: str, **params: Any) -> list[dict[str, Any]]:
        r = self.http.get(f"{self.base}/patients/{quote(patient_id, safe='')}/documents", params=params,
                          headers=self.headers)
        assert r.status_code == 200, r.text
        return r.json()["documents"]

    def as_(self, token: str) -> Dmp:
        return Dmp(self.http, self.session, token)

    def sample(self, **kw: Any) -> dict[str, Any]:
        return samples.session_submission(self.session["fixtures"], **kw)
