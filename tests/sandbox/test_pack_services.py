"""The generic core services a pack configures: official schemas (``--schema``) and directories (``DIRECTORIES``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conformity.cli import cli
from sandbox import faults, plugins
from sandbox.schemas import OfficialSchema, chosen
from sandbox.services import directory


def declared(tmp_path: Path, *, found: bool) -> dict[str, OfficialSchema]:
    copy = tmp_path / "x.xsd"
    copy.write_text("<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'/>")
    return {"x": OfficialSchema("x", "a test schema", locate=lambda: copy if found else None)}


def test_schema_option_takes_a_path_or_the_located_copy(tmp_path: Path) -> None:
    other = tmp_path / "other.xsd"
    other.write_text("<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'/>")
    assert chosen([f"x={other}"], declared(tmp_path, found=False)) == {"x": other}
    assert chosen(["x"], declared(tmp_path, found=True)) == {"x": tmp_path / "x.xsd"}
    assert chosen([], declared(tmp_path, found=True)) == {}


@pytest.mark.parametrize(("values", "why"), [
    (["y=/etc/hostname"], "no installed pack declares a schema 'y' (known: x (a test schema))"),
    (["x=/nonexistent/x.xsd"], "'/nonexistent/x.xsd' is not a file"),
    (["x"], "is not found in the usual place"),
    (["x=/etc/hostname", "x=/etc/hostname"], "--schema x is given twice"),
])
def test_schema_option_refuses_bad_values(tmp_path: Path, values: list[str], why: str) -> None:
    with pytest.raises(ValueError) as e:
        chosen(values, declared(tmp_path, found=False))
    assert why in str(e.value)


@pytest.mark.parametrize(("content", "why"), [
    ("not XML at all", "Start tag expected"),
    ("<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'><xs:element/></xs:schema>", "name"),
])
def test_a_cda_schema_file_that_is_no_schema_is_refused_when_the_sandbox_starts(tmp_path: Path, content: str,
                                                                                why: str) -> None:
    """QA: ``usine sandbox serve --schema cda=<not XML>`` ended in an lxml traceback, exit 1."""
    bad = tmp_path / "CDA.xsd"
    bad.write_text(content)
    with pytest.raises(ValueError) as e:
        chosen([f"cda={bad}"], plugins.schemas())
    assert str(e.value).startswith(f"--schema cda={bad}: {bad} is not the HL7 CDA R2 XML Schema") and why in str(e.value)
    r = CliRunner().invoke(cli, ["sandbox", "serve", "--schema", f"cda={bad}", "--data", str(tmp_path / "d")])
    assert r.exit_code == 2 and "is not the HL7 CDA R2 XML Schema" in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "d").exists()


def test_serve_refuses_an_undeclared_schema_before_starting(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["sandbox", "serve", "--data", str(tmp_path / "d"), "--schema", "nope=/etc/hostname"])
    assert r.exit_code == 2
    assert "no installed pack declares a schema 'nope'" in r.output
    assert not (tmp_path / "d").exists()  # refused before anything was written


def test_installed_packs_declare_their_schemas_and_the_cli_lists_them() -> None:
    declared_names = plugins.schemas()
    r = CliRunner().invoke(cli, ["sandbox", "schemas"])
    assert r.exit_code == 0, r.output
    listed = [line.split("\t")[0] for line in r.output.splitlines()]
    assert listed == list(declared_names) and listed  # the health pack declares HL7's CDA schema


def test_every_directory_is_a_service_of_its_pack_with_the_core_directory_faults() -> None:
    profiles = [d for p in plugins.packs().values() for d in p.directories]
    assert profiles, "no installed pack configures a directory"
    catalogue = faults.catalogue()
    for profile in profiles:
        mounted = plugins.services()[profile.service]
        assert isinstance(mounted, directory.DirectoryService) and mounted.profile is profile
        assert [r.path for r in mounted.router.routes] == [f"/{s.path}" for s in profile.searches]
        assert set(directory.FAULTS) <= set(catalogue[profile.service])
        assert "reset" in catalogue[profile.service]  # and the network faults every service has


def test_a_filter_prepares_its_value_and_refuses_an_emptied_one() -> None:
    f = directory.Filter("name", lambda e, v: v in e["name"], prepare=str.lower, invalid="has no letter")
    assert f.prepare(" AbC ") == " abc " and f.match({"name": "x abc y"}, "abc")
    assert directory.field_is("a", "b")({"b": "1"}, "1") and not directory.field_is("a")({"b": "1"}, "1")
