"""Safe reading of a bundle zip: unsafe members are named and never read; limits hold before reading."""

from __future__ import annotations

import stat
import struct
import zipfile
from pathlib import Path

import pytest

from conformity.agency.bundlezip import ZipLimits, open_bundle, unsafe_name
from conformity.errors import InputError
from tests.agency.helpers import raw_zip


@pytest.mark.parametrize("name,why", [
    ("../x.json", "escapes"), ("traces/../../x.json", "escapes"), ("/etc/passwd", "absolute"),
    ("C:/x.json", "absolute"), ("traces\\x.json", "backslash"), ("traces/", "directory"),
    ("traces//x.json", "empty"), ("./x.json", "'.'"), ("a\x01b", "control"), ("", "empty name"),
])
def test_unsafe_names(name: str, why: str) -> None:
    assert why in (unsafe_name(name, name, 200) or "")


def test_safe_names() -> None:
    for name in ("manifest.json", "traces/pracauth.login_nominal.json", "report.html"):
        assert unsafe_name(name, name, 200) is None


def test_a_member_over_the_limit_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    z = raw_zip(tmp_path / "b.zip", [("manifest.json", b"{}"), ("big.json", b"0" * 5000)])
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spy(self: zipfile.ZipFile, name: object, *a: object, **k: object):  # type: ignore[no-untyped-def]  # a spy standing in for ZipFile.open, with its loose signature
        opened.append(getattr(name, "filename", name))  # type: ignore[arg-type]  # a spy standing in for ZipFile.open, with its loose signature
        return real_open(self, name, *a, **k)  # type: ignore[arg-type]  # a spy standing in for ZipFile.open, with its loose signature

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    archive = open_bundle(z, ZipLimits(max_member_bytes=1000))
    assert opened == ["manifest.json"]
    assert "big.json" not in archive.members
    assert any("exceeds the 1000-byte limit" in p.message for p in archive.problems)


def test_total_and_count_limits(tmp_path: Path) -> None:
    z = raw_zip(tmp_path / "b.zip", [(f"m{i}.json", b"x" * 400) for i in range(5)])
    total = open_bundle(z, ZipLimits(max_total_bytes=1000))
    assert sorted(total.members) == ["m0.json", "m1.json"]
    assert sum("in total" in p.message for p in total.problems) == 3
    count = open_bundle(z, ZipLimits(max_members=4))
    assert not count.members and "5 members, more than the 4 allowed" in count.problems[0].message


def test_a_member_larger_than_it_declares_is_refused(tmp_path: Path) -> None:
    """A forged local header cannot make the reader hold more than the declared size."""
    z = raw_zip(tmp_path / "b.zip", [("a.json", b"y" * 4000)])
    data = bytearray(z.read_bytes())
    cd = data.rfind(b"PK\x01\x02")  # the central directory entry: uncompressed size at offset 24
    data[cd + 24:cd + 28] = struct.pack("<I", 10)
    z.write_bytes(bytes(data))
    archive = open_bundle(z)
    assert not archive.members
    assert archive.problems and ("declared" in archive.problems[0].message or "corrupt" in archive.problems[0].message)


def test_symlinks_special_files_and_duplicates_are_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("link.json")
    link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
    fifo = zipfile.ZipInfo("fifo.json")
    fifo.create_system, fifo.external_attr = 3, (stat.S_IFIFO | 0o644) << 16
    with pytest.warns(UserWarning, match="Duplicate name"):
        z = raw_zip(tmp_path / "b.zip", [(link, b"/etc/passwd"), (fifo, b""), ("a.json", b"1"), ("a.json", b"2")])
    archive = open_bundle(z)
    assert archive.members == {"a.json": b"1"}
    text = " ".join(p.message for p in archive.problems)
    assert "symbolic link" in text and "not a regular file" in text and "duplicate" in text


def test_not_a_zip_is_unreadable_input(tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_text("hello")
    with pytest.raises(InputError, match="not a zip archive"):
        open_bundle(tmp_path / "x.zip")
    with pytest.raises(InputError, match="not found"):
        open_bundle(tmp_path / "absent.zip")
    (tmp_path / "big.zip").write_bytes(b"0" * 2000)
    with pytest.raises(InputError, match="larger than"):
        open_bundle(tmp_path / "big.zip", ZipLimits(max_archive_bytes=1000))
