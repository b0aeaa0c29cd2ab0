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
