"""What a vendor's token or account may do changes at once, even for a request already under way."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from conformity.agency.registry import Registry
from conformity.agency.service import accounts
from tests.agency.helpers import Runs
from tests.agency.service_client import Served, Service


@pytest.mark.parametrize("action", ["disable", "rotate"])
def test_an_upload_in_flight_when_its_account_is_disabled_or_its_token_rotated_is_refused(
        sqlite_service: Service, runs: Runs, action: str) -> None:
    """The token was checked before the body streamed only: an upload still coming in when an admin disabled the
    account (or rotated its token) was recorded, verified and decided (202)."""
    s = sqlite_service
    served = Served(s.config)
    body = runs.reference.read_bytes()

    def slowly() -> Iterator[bytes]:
        yield body[:4096]
        time.sleep(0.3)  # the server is reading this body now
        with Registry(s.config.database) as reg:
            if action == "disable":
                accounts.set_disabled(reg.db, "ref", True)
            else:
                accounts.rotate_token(reg.db, accounts.account(reg.db, "ref"), "rotated")  # type: ignore[arg-type]
        yield body[4096:]

    try:
        r = httpx.post(f"{served.url}/api/v1/submissions", content=slowly(), timeout=60,
                       headers={"Authorization": f"Bearer {s.token}", "Content-Type": "application/zip",
                                "Content-Length": str(len(body))})
    finally:
        served.close()
    assert r.status_code == 401, r.text
    assert s.table("SELECT id FROM uploads") == [] and s.table("SELECT id FROM submissions") == []
    assert not [p for p in s.config.uploads.glob("*") if p.is_file()]  # nor its file kept
