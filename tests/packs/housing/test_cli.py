"""The catalog commands work for the housing pack as for health: validate, referentials list, wave show and diff."""

from __future__ import annotations

from click.testing import CliRunner

from conformity.cli import cli


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_validate_and_list_name_both_packs() -> None:
    assert "2 pack(s)" in invoke("validate")
    listed = invoke("referentials", "list")
    for rid in ("PRACAUTH", "PROAUTH", "HOUSINGID", "DPE", "CONSENT", "WORKS", "BASELINE"):
        assert rid in listed, rid


def test_wave_show_is_the_housing_specification() -> None:
    text = invoke("wave", "show", "2026-W3", "--category", "DIAGNOSTICIAN")
    assert "DPE-005" in text and "professional.login" in text and "dpe.file" in text
    assert "CONSENT-001" not in text  # consent is the advisers' and contractors' concern
    markdown = invoke("wave", "show", "2026-W3", "--category", "CONTRACTOR", "--format", "markdown")
    assert "WORKS-004" in markdown and "quote.send" in markdown


def test_wave_diff_is_the_housing_to_do_list() -> None:
    text = invoke("wave", "diff", "2026-W3", "2027-W4", "--category", "DIAGNOSTICIAN")
    assert "HOUSINGID 1.0 → 1.1" in text or "HOUSINGID: 1.0 → 1.1" in text
    assert "DPE-010" in text and "HOUSINGID-009" in text
