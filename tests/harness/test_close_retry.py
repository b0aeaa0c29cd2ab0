"""A scenario's session close whose answer is lost (the connection dropped after the sandbox closed the session): the
scenario, its trace exported already, is not thrown away as a sandbox error; the close is asked again and answered
as the first (the sandbox's close is idempotent)."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from conformity.catalog import load_catalog
from conformity.harness.outputs import run_to_end
from conformity.harness.plan import make_plan
from conformity.harness.runner import Runner
from conformity.harness.sandbox_access import ADMIN_KEEP_ALIVE_S, SandboxAccess
from conformity.harness.vendor import load_vendor
from tests.harness.helpers import vendor_manifest


class LosesFirstCloseAnswers(httpx.BaseTransport):
    """The real transport, but the first answer to each session's close is lost on its way back (the request was
    served: the session is closed)."""

    def __init__(self, inner: httpx.BaseTransport, closes: list[tuple[str, int]]):
        self.inner, self.closes = inner, closes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/close"):
            response.read()
            first = request.url.path not in {path for path, _ in self.closes}
            self.closes.append((request.url.path, response.status_code))
            if first:
                raise httpx.ReadError("connection reset by peer (the test's lost answer)", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


@dataclasses.dataclass
class LossyAccess(SandboxAccess):
    closes: list[tuple[str, int]] = dataclasses.field(default_factory=list)

    def admin(self) -> httpx.Client:
        transport = LosesFirstCloseAnswers(httpx.HTTPTransport(verify=self.verify), self.closes)
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60,
                            transport=transport, limits=httpx.Limits(keepalive_expiry=ADMIN_KEEP_ALIVE_S))


def test_a_lost_close_answer_does_not_fail_the_scenario(harness_sandbox: SandboxAccess) -> None:
    access = LossyAccess(**{f.name: getattr(harness_sandbox, f.name) for f in dataclasses.fields(SandboxAccess)
                            if f.init})
    vendor = load_vendor(vendor_manifest("reference"))
    runner = Runner(make_plan(load_catalog(), "2026-W1", "GP", ("PRACAUTH-001",)), vendor, 0, access, parallel=1)
    report: dict[str, Any] = run_to_end(runner).report
    [scenario] = report["scenarios"]
    assert scenario["error"] is None and scenario["trace"] is not None, scenario
    path = f"/admin/sessions/{scenario['session_id']}/close"
    assert access.closes == [(path, 200), (path, 200)]  # asked again after the lost answer: closed, as the first
