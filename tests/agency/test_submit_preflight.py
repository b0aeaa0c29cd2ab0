"""``usine submit`` checks BUNDLE before sending it: garbage is refused on the vendor's machine, exit 2, naming the
file, and the agency receives nothing (it recorded an upload, judged it, and kept its bytes for 30 days)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from conformity.agency.registry import Registry
from conformity.agency.service import ServiceConfig, accounts
from conformity.catalog import Catalog
from conformity.cli import cli
from conformity.db.connection import Database
from conformity.signing import KeyRing, SigningKey
from tests.agency.service_client import Served


@pytest.fixture
def agency(tmp_path: Path, catalog: Catalog) -> Iterator[tuple[str, str, Database]]:
    """A real agency service under uvicorn on a loopback port: (its URL, a vendor's API token, its database)."""
    sandbox_key = tmp_path / "sandbox" / "trace-signing.pem"
    SigningKey.generate().save(sandbox_key)
    database = Database(tmp_path / "registry.sqlite3")
    config = ServiceConfig(database=database, catalog=catalog, trust=KeyRing.from_paths([sandbox_key.with_name("trace-signing.pub.pem")]),
                           key_path=tmp_path / "agency-key.pem", data=tmp_path / "service", background=False)
    with Registry(database) as reg:
        vendor = accounts.create_account(reg.db, "ref", "Reference vendor", "vendor", vendor_id="usine-reference")
        token = accounts.create_token(reg.db, vendor, "ci")
    served = Served(config)
    try:
        yield served.url, token, database
    finally:
        served.close()


def _uploads(database: Database) -> int:
    with Registry(database) as reg:
        return int(reg.db.execute("SELECT COUNT(*) FROM uploads").fetchone()[0])


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


GARBAGE = {
    "empty": lambda p: _bytes(p, b""),
    "random bytes": lambda p: _bytes(p, bytes(range(256)) * 8),
    "a JSON file": lambda p: _bytes(p, json.dumps({"wave": "2026-W1"}).encode()),
    "a zip without manifest": lambda p: _zip(p, {"readme.txt": b"hello"}),
    "a manifest that is not JSON": lambda p: _zip(p, {"manifest.json": b"\xff\xfe not json"}),
    "a manifest that is a list": lambda p: _zip(p, {"manifest.json": b"[1, 2]"}),
    "a manifest naming a member twice": lambda p: _zip(p, {"manifest.json": b'{"wave": 1, "wave": 2}'}),
}


@pytest.mark.parametrize("garbage", sorted(GARBAGE))
def test_garbage_is_refused_before_anything_is_sent(agency: tuple[str, str, Database], tmp_path: Path,
                                                    garbage: str) -> None:
    """Before: each of these was uploaded (exit 1 after the agency refused it, or 0 with --no-wait), the agency
    recording an upload of the vendor's and keeping its bytes."""
    url, token, database = agency
    bundle = GARBAGE[garbage](tmp_path / "bundle.zip")
    result = CliRunner().invoke(cli, ["submit", str(bundle), "--agency", url, "--token", token, "--no-wait"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    assert "bundle.zip" in result.output and "Traceback" not in result.output, result.output
    assert "received" not in result.output, result.output
    assert _uploads(database) == 0


def test_a_zip_holding_a_manifest_is_left_to_the_agency_to_judge(agency: tuple[str, str, Database],
                                                                 tmp_path: Path) -> None:
    """The local check is no verifier: a zip with a manifest object goes to the agency, which refuses it (exit 1)."""
    url, token, database = agency
    bundle = _zip(tmp_path / "bundle.zip", {"manifest.json": b'{"wave": "2026-W1"}'})
    result = CliRunner().invoke(cli, ["submit", str(bundle), "--agency", url, "--token", token, "--timeout", "30"])
    assert result.exit_code == 1, result.output
    assert "received: " in result.output and "REFUSED" in result.output, result.output
    assert _uploads(database) == 1
