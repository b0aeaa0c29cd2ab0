"""conformity.cli.params: the one RFC 3339 option type every command uses (label verify --at, pay run --as-of)."""

from __future__ import annotations

import datetime as dt

import click
import pytest
from click.testing import CliRunner

from conformity.cli import cli
from conformity.cli.params import RFC3339, now_unless


@pytest.mark.parametrize(("text", "expected"), [
    ("2027-06-30T23:59:59Z", dt.datetime(2027, 6, 30, 23, 59, 59, tzinfo=dt.UTC)),
    ("2027-07-01T01:59:59+02:00", dt.datetime(2027, 6, 30, 23, 59, 59, tzinfo=dt.UTC)),
])
def test_rfc3339_times_with_a_zone_are_aware_datetimes(text: str, expected: dt.datetime) -> None:
    assert RFC3339.convert(text, None, None) == expected


@pytest.mark.parametrize("text", ["2027-06-30", "2027-06-30T23:59:59", "tomorrow", ""])
def test_a_time_without_zone_or_not_a_time_is_a_usage_error(text: str) -> None:
    with pytest.raises(click.BadParameter, match="not an RFC 3339 time with a zone"):
        RFC3339.convert(text, None, None)


@pytest.mark.parametrize("args", [["label", "verify", "x.json", "--at", "2020-01-01"],
                                  ["pay", "run", "--wave", "W", "--as-of", "2020-01-01T00:00"]])
def test_every_command_refuses_a_bad_time_the_same_way(args: list[str]) -> None:
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2 and "is not an RFC 3339 time with a zone" in r.output, r.output


def test_no_time_means_now() -> None:
    before = dt.datetime.now(dt.UTC)
    assert before <= now_unless(None) <= dt.datetime.now(dt.UTC)
    assert now_unless(before) is before
