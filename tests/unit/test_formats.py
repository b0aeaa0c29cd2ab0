"""Schemas enforce their formats: a ``date-time`` that is not RFC 3339 is refused (issue 9, bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conformity.catalog.schema import schema_problems
from conformity.cli import cli
from conformity.labels import LABEL_FORMAT, sign_revocations
from conformity.signing import SigningKey
from tests.payments.builders import label_fields

AGENCY = SigningKey.from_seed(b"usine tests: formats")
NOT_RFC3339 = ["2026-02-01 00:00:00Z", "2026-02-01T00:00:00", "2026-13-01T00:00:00Z", "yesterday", "2026-02-01"]


@pytest.mark.parametrize("value", NOT_RFC3339)
def test_a_label_issued_at_a_time_that_is_not_rfc3339_is_refused(value: str, tmp_path: Path) -> None:
    doc = {"format": LABEL_FORMAT, **label_fields(issued=value), "issuer": {"name": "x", "key_id": AGENCY.kid}}
    assert [p.where for p in schema_problems("label", doc, "label")] == ["issued"]
    (tmp_path / "label.json").write_text(json.dumps(AGENCY.sign_document(doc)))
    (tmp_path / "agency.pub.pem").write_text(AGENCY.verify_key.pem())
    r = CliRunner().invoke(cli, ["label", "verify", str(tmp_path / "label.json"), "--key", str(tmp_path / "agency.pub.pem")])
    assert r.exit_code == 1 and "INVALID (malformed" in r.output and "issued" in r.output, r.output


@pytest.mark.parametrize("value", NOT_RFC3339)
def test_a_revocation_time_that_is_not_rfc3339_is_refused(value: str) -> None:
    entry = {"label_id": "lbl_000000000000", "software_id": "s", "version": "1", "wave": "2026-W1",
             "revoked": value, "reason": "x"}
    with pytest.raises(Exception, match="revocations at revocations\\[0\\].revoked"):
        sign_revocations([entry], AGENCY)


def test_a_label_file_nested_100000_deep_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "label.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "agency.pub.pem").write_text(AGENCY.verify_key.pem())
    r = CliRunner().invoke(cli, ["label", "verify", str(tmp_path / "label.json"), "--key", str(tmp_path / "agency.pub.pem")])
    assert r.exit_code == 2 and "nested deeper than" in r.output and "label.json" in r.output, r.output


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', '{"x": [{"b": 1, "c": 2, "b": 1}]}'])
def test_json_with_a_name_twice_in_one_object_is_refused(text: str, tmp_path: Path) -> None:
    """RFC 8259 leaves duplicate names to the parser (first or last wins): two readers could disagree."""
    (tmp_path / "label.json").write_text(text)
    (tmp_path / "agency.pub.pem").write_text(AGENCY.verify_key.pem())
    r = CliRunner().invoke(cli, ["label", "verify", str(tmp_path / "label.json"), "--key", str(tmp_path / "agency.pub.pem")])
    assert r.exit_code == 2 and "appears twice in one object" in r.output and "label.json" in r.output, r.output
