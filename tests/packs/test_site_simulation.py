"""The pack-generic site simulation (``examples/sites``): installations of labelled software sending real data.

One shared core (``simulate.py``: installations registered through the admin API, then what a pack's producer
makes sent with the installation token) and one producer per pack (``health.py``: CDA documents to the shared
record; ``housing.py``: DPEs to the observatory). Each pack's production service accepts every item and emits one
data-received event per item, of the pack's data kind, for that installation.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.server import RunningSandbox, start_in_thread

SITES = Path(__file__).resolve().parents[2] / "examples" / "sites"
ADMIN = "sites-admin-token"
SOFTWARE = {"id": "v.app", "name": "App", "version": "1.0.0", "registration_id": "REG-1"}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_in_thread(SandboxConfig(data_dir=tmp_path_factory.mktemp("sites"), admin_token=ADMIN)) as server:
        yield server


def sites_module(name: str) -> ModuleType:
    sys.path.insert(0, str(SITES))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(SITES))


@pytest.mark.parametrize(("producer", "wave", "category", "site_id", "kind"), [
    ("health", "2027-W2", "HOSPITAL", "750100011", "document"),
    ("housing", "2026-W3", "DIAGNOSTICIAN", "41234567800019", "dpe"),
    ("housing", "2026-W3", "ADVISER", "51234567800027", "consumption_transfer"),
])
def test_each_pack_simulates_its_sites_through_the_one_core(running: RunningSandbox, producer: str, wave: str,
                                                           category: str, site_id: str, kind: str) -> None:
    simulate, pack = sites_module("simulate"), sites_module(producer)
    produce = pack.documents() if producer == "health" else pack.transfers if category == "ADVISER" else pack.dpes
    setup = pack.household_consent if category == "ADVISER" else None  # the household's consent first
    installations = simulate.simulate_sites(
        running.base_url, ADMIN, verify=False, vendor_id="v", software=SOFTWARE, wave=wave, category=category,
        sites=[simulate.Site(site_id, "M", "a site"), simulate.Site(site_id[:-1] + "9", "S", "another")], count=3,
        produce=produce, setup=setup)
    assert len(installations) == 2
    events = httpx.get(running.base_url + "/admin/events", headers={"Authorization": f"Bearer {ADMIN}"}).json()["events"]
    for inst in installations:
        mine = [e for e in events if e["subject"] == inst["id"]]
        assert [e["data"]["kind"] for e in mine] == [kind] * 3, mine


def test_a_refused_item_stops_the_simulation_with_the_sandbox_answer(running: RunningSandbox) -> None:
    simulate = sites_module("simulate")

    def broken(*_: object) -> object:
        return simulate.Send("/prod/observatory/dpe", content=b"<not-a-dpe/>", headers={"Content-Type": "application/xml"})

    with pytest.raises(httpx.HTTPStatusError) as e:
        simulate.simulate_sites(running.base_url, ADMIN, verify=False, vendor_id="v", software=SOFTWARE,
                                wave="2026-W3", category="DIAGNOSTICIAN", sites=[simulate.Site("41234567800027", "S", "x")],
                                count=1, produce=broken)
    assert e.value.response.status_code == 422
