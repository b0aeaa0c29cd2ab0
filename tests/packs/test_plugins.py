"""Sector packs as plug-ins: found through the ``usine.packs`` entry points, a broken one named, a pack's data
travelling with it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conformity import plugins
from conformity.catalog import load_catalog
from conformity.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_packs_are_installed_like_any_plugin() -> None:
    installed = plugins.installed()
    assert {"health", "housing"} <= set(installed)
    assert all(isinstance(p, plugins.SectorPack) and p.id == name for name, p in installed.items())
    assert set(plugins.register_all()) == set(installed)


def test_a_broken_plugin_is_named_not_a_traceback() -> None:
    def boom() -> plugins.SectorPack:
        raise ImportError("No module named 'acme_pack'")

    with pytest.raises(InputError, match="sector pack 'acme'.*failed to load.*acme_pack"):
        plugins._load("acme", "acme_pack:PACK", boom)
    with pytest.raises(InputError, match="is not the SectorPack of pack 'acme'"):
        plugins._load("acme", "acme_pack:PACK", lambda: plugins.get("housing"))


def test_a_packs_data_travels_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalog without the housing folder still has housing's referentials and waves when the installed pack
    carries them (``SectorPack.data``), as a pack living in its own distribution does."""
    (tmp_path / "referentials").mkdir()
    shutil.copytree(ROOT / "referentials" / "health", tmp_path / "referentials" / "health")
    (tmp_path / "waves").mkdir()
    for wave in ("2026-W1.toml", "2027-W2.toml"):
        shutil.copy(ROOT / "waves" / wave, tmp_path / "waves" / wave)
    housing = plugins.installed()["housing"]
    travelling = plugins.SectorPack(id="housing", register=housing.register, sandbox=housing.sandbox, data=ROOT)
    shipped = plugins.installed()
    monkeypatch.setattr(plugins, "installed", lambda: {**shipped, "housing": travelling})
    catalog = load_catalog(tmp_path)
    assert {"health", "housing"} <= set(catalog.packs)
    assert {"2026-W3", "2027-W4"} <= set(catalog.waves)
    assert catalog.packs["housing"].path.is_relative_to(ROOT)


def test_an_unknown_pack_says_how_to_register_it_and_names_stale_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "usine.egg-info"
    stale.mkdir()
    monkeypatch.setattr(plugins, "_stale_metadata", lambda: [stale])
    with pytest.raises(InputError, match=r"no installed sector pack 'nosuch'.*pip install -e .*usine\.egg-info.*delete it"):
        plugins.get("nosuch")


def test_a_pack_whose_register_hook_fails_is_named_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise ModuleNotFoundError("No module named 'gaspack.checkz'")

    gas = plugins.SectorPack(id="gas", register=broken)
    monkeypatch.setattr(plugins, "installed", lambda: {"gas": gas})
    plugins.register_all.cache_clear()
    try:
        with pytest.raises(InputError, match=r"sector pack 'gas' failed to register.*gaspack\.checkz"):
            plugins.register_all()
    finally:
        plugins.register_all.cache_clear()
    with pytest.raises(InputError, match="register hook is not callable"):
        plugins._load("gas", "gaspack:PACK", lambda: plugins.SectorPack(id="gas", register=None))  # type: ignore[arg-type]


def test_one_pack_id_registered_by_two_distributions_is_an_error_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    """Which one won depended on the order Python found them (and the errors then pointed elsewhere)."""
    from importlib.metadata import EntryPoint

    class Dist:
        def __init__(self, name: str) -> None:
            self.name, self.version = name, "1.0"

    eps = [EntryPoint("housing", "conformity.packs.housing:PACK", plugins.GROUP),
           EntryPoint("housing", "fakehousing:PACK", plugins.GROUP)]
    for ep, dist in zip(eps, (Dist("usine"), Dist("fakehousing")), strict=True):
        object.__setattr__(ep, "dist", dist)
    monkeypatch.setattr(plugins, "entry_points", lambda group: eps)
    plugins.installed.cache_clear()
    try:
        with pytest.raises(InputError, match=r"sector pack 'housing' is registered by several installed "
                                             r"distributions: .*usine 1\.0.*fakehousing 1\.0"):
            plugins.installed()
    finally:
        plugins.installed.cache_clear()


def test_a_pack_with_data_and_no_installed_plugin_is_refused(tmp_path: Path) -> None:
    from conformity.catalog.crosscheck import Registered
    from conformity.checks.packs import registered
    from conformity.errors import CatalogError

    full = registered()
    only_health = Registered(frozenset({"health"}),
                             {cid: c for cid, c in full.checks.items() if c.pack == "health"})
    with pytest.raises(CatalogError) as info:
        load_catalog(ROOT, registered_checks=only_health)
    problems = [str(p) for p in info.value.problems]
    assert any("pack housing has data in the catalog but no installed plug-in" in p for p in problems), problems


def _declared(**changes: object) -> object:
    """The registered checks with one declaration changed (``check id`` → DeclaredCheck)."""
    import dataclasses

    from conformity.catalog.crosscheck import Registered
    from conformity.checks.packs import registered

    full = registered()
    checks = dict(full.checks)
    for cid, fields in changes.items():
        checks[cid.replace("__", ".")] = dataclasses.replace(full.checks[cid.replace("__", ".")], **fields)  # type: ignore[arg-type]
    return Registered(full.packs, checks)


@pytest.mark.parametrize("fields,words", [
    ({"verifies": ("DPE-005", "DPE-777")}, "DPE-777, which no referential of the catalog has"),
    ({"verifies": ("DPE-005", "PATIENTID-006")}, "PATIENTID-006, a requirement of pack health"),
    ({"verifies": ("DPE-005", "DPE-001")}, "DPE-001, but no version of DPE-001 names it"),
    ({"verifies": ("DPE-001",)}, "is named by DPE-005 but declares it verifies DPE-001"),
    ({"unknown_scenarios": ("housing.no_such_scenario",)}, "runs scenario 'housing.no_such_scenario', which no"),
])
def test_a_checks_declaration_disagreeing_with_the_catalog_is_refused(fields: dict[str, object], words: str) -> None:
    """Coverage reads what checks declare: a check claiming a requirement it does not verify (or one that does not
    exist), or needing a scenario no pack registered (a KeyError traceback at run --plan), is a catalog error."""
    from conformity.errors import CatalogError

    with pytest.raises(CatalogError) as info:
        load_catalog(ROOT, registered_checks=_declared(housing__dpe_class_recomputed=fields))  # type: ignore[arg-type]
    problems = [str(p) for p in info.value.problems]
    assert any(words in p and "housing.dpe_class_recomputed" in p for p in problems), problems


def test_the_shipped_checks_agree_with_the_shipped_catalog() -> None:
    from conformity.checks.packs import registered

    declared = registered()
    assert load_catalog(ROOT, registered_checks=declared).packs.keys() == {"health", "housing"}
    assert {c.pack for c in declared.checks.values()} == {"health", "housing"}
