"""The benchmarks refuse a bad command-line value before measuring anything: argparse's usage error (exit status 2)
naming the option, the value and why — never a traceback, never a run on a meaningless workload."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _arguments() -> ModuleType:
    """``benchmarks/arguments.py``, loaded from its file (the scripts import it by name, their folder on the path)."""
    spec = importlib.util.spec_from_file_location("benchmark_arguments", BENCHMARKS / "arguments.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ARGS = _arguments()


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch):
    """A benchmark script imported as a module (its folder on the path, as when it runs as a script)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))

    def load(name: str) -> ModuleType:
        return importlib.import_module(name)

    return load


# ---- the value types -------------------------------------------------------------------------------------------

@seed(20261204)
@settings(max_examples=200, deadline=None)
@given(minimum=st.integers(0, 3), value=st.integers(-10**6, 10**12))
def test_count_takes_whole_numbers_from_its_minimum(minimum: int, value: int) -> None:
    parse = ARGS.count(minimum)
    if value >= minimum:
        assert parse(str(value)) == value
        assert parse(f"{value:_}") == value  # 1_000_000 as Python writes it
    else:
        with pytest.raises(argparse.ArgumentTypeError, match=f"must be at least {minimum}"):
            parse(str(value))


@seed(20261204)
@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(1, 10**9), max_size=6))
def test_counts_reads_comma_separated_lists(values: list[int]) -> None:
    assert ARGS.counts()(",".join(map(str, values))) == values
    assert ARGS.counts()(" , ".join(map(str, values)) + ",") == values  # spaces and a trailing comma ignored


@pytest.mark.parametrize("text, why", [("abc", "not a whole number"), ("1.5", "not a whole number"), ("", "not a whole number"),
                                       ("0", "at least 1"), ("-3", "at least 1")])
def test_count_refuses(text: str, why: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=why):
        ARGS.count()(text)


def test_counts_names_the_bad_part() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"in '1,x,3': 'x' is not a whole number"):
        ARGS.counts()("1,x,3")
    assert ARGS.counts()("") == []


@pytest.mark.parametrize("text, why", [("nan", "finite"), ("inf", "finite"), ("-1", "above zero"), ("0", "above zero"),
                                       ("x", "not a number")])
def test_positive_refuses(text: str, why: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=why):
        ARGS.positive(text)


def test_positive_takes_what_is_above_zero() -> None:
    assert ARGS.positive("0.108") == 0.108
    assert ARGS.positive("3") == 3.0


# ---- each script -----------------------------------------------------------------------------------------------

def _not_a_bundle(tmp: Path) -> Path:
    p = tmp / "not-a-bundle.zip"
    p.write_text("not a zip")
    return p


def _bundle_without_traces(tmp: Path) -> Path:
    p = tmp / "bundle.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("report.json", "{}")
    return p


BAD: list[tuple[str, list[str], str]] = [
    ("sandbox_throughput", ["--documents", "-1"], "argument --documents: '-1': must be at least 0"),
    ("sandbox_throughput", ["--documents", "abc"], "argument --documents: 'abc' is not a whole number"),
    ("sandbox_throughput", ["--intake-sessions", "-1"], "argument --intake-sessions: '-1': must be at least 0"),
    ("sandbox_throughput", ["--intake-sessions", "x"], "argument --intake-sessions: 'x' is not a whole number"),
    ("sandbox_throughput", ["--sessions", "0"], "argument --sessions: '0': must be at least 1"),
    ("sandbox_throughput", ["--sessions", "1,x"], "argument --sessions: in '1,x': 'x' is not a whole number"),
    ("sandbox_throughput", ["--vendors", "x"], "argument --vendors: 'x' is not a whole number"),
    ("sandbox_throughput", ["--per-session", "0"], "argument --per-session: '0': must be at least 1"),
    ("sandbox_throughput", ["--think", "0"], "argument --think: '0': must be above zero"),
    ("sandbox_throughput", ["--think", "-1"], "argument --think: '-1': must be above zero"),
    ("sandbox_throughput", ["--think", "nan"], "argument --think: 'nan': must be a finite number"),
    ("sandbox_throughput", ["--workers", "0"], "argument --workers: '0': must be at least 1"),
    ("sandbox_throughput", ["--workers", ""], "--workers: no worker count given"),
    ("sandbox_throughput", ["--workers", "1,2"], "--workers 2: several workers share a PostgreSQL store"),
    ("sandbox_throughput", ["--workers", "1,2", "--database", "postgresql://x/y", "--sessions", ""],
     "--sessions is empty"),
    ("sandbox_throughput", ["--documents", "0", "--vendors", "", "--sessions", ""], "nothing to measure"),
    ("sandbox_throughput", ["--threads", "0"], "argument --threads: '0': must be at least 1"),
    ("sandbox_throughput", ["--rounds", "0"], "argument --rounds"),
    ("sandbox_throughput", ["--block", "0"], "argument --block"),
    ("sandbox_throughput", ["--compare-tree", "/nonexistent"], "not a checkout of usine"),
    ("sandbox_throughput", ["--think-from", "/nonexistent/bundle.zip"], "--think-from /nonexistent/bundle.zip: not a run's"),
    ("sandbox_throughput", ["--think-from", "{not_a_bundle}"], "not a run's bundle.zip"),
    ("sandbox_throughput", ["--think-from", "{bundle_without_traces}"], "no session of it has two HTTP exchanges"),
    ("payments_run", ["--events", "0"], "argument --events: '0': must be at least 1"),
    ("payments_run", ["--events", "1000,-5"], "argument --events: in '1000,-5': '-5': must be at least 1"),
    ("payments_run", ["--events", "1M"], "argument --events: '1M' is not a whole number"),
    ("payments_run", ["--events", ""], "--events: no size given"),
    ("payments_run", ["--installations", "0"], "argument --installations"),
    ("payments_run", ["--max-load", "0"], "argument --max-load: '0': must be above zero"),
    ("payments_run", ["--memory-limit", "lots"], "--memory-limit: 'lots' is not a memory size"),
    ("events_generate", ["--events", "0", "--out", "{tmp}"], "argument --events"),
    ("events_generate", ["--installations", "-2", "--out", "{tmp}"], "argument --installations"),
    ("payments_compare", ["--other", "{tmp}", "--events", "0"], "argument --events"),
    ("payments_compare", ["--other", "{tmp}", "--runs", "0"], "argument --runs"),
    ("harness_run", ["--parallel", "-1"], "argument --parallel: '-1': must be at least 0"),
    ("harness_run", ["--early", "x"], "argument --early: 'x' is not a whole number"),
    ("harness_run", ["--wave", "1999-W9"], "unknown wave '1999-W9'"),
    ("harness_run", ["--category", "SUBMARINE"], "SUBMARINE"),
    ("harness_run", ["--vendor", "/nonexistent/vendor.toml"], "vendor manifest not found"),
    ("agency_service", ["--users", "5", "--reviewers", "6"], "--reviewers 6: more than the --users (5)"),
    ("agency_service", ["--users", "0"], "argument --users"),
    ("agency_service", ["--think", "0"], "argument --think"),
    ("agency_service", ["--requests", "1"], "argument --requests: '1': must be at least 2"),
    ("catalog_load", ["--repeat", "0"], "argument --repeat"),
]


@pytest.mark.parametrize("script, argv, message", BAD, ids=[f"{s} {' '.join(a) or repr('')}" for s, a, _ in BAD])
def test_a_bad_value_is_refused_before_anything_runs(bench, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     script: str, argv: list[str], message: str) -> None:
    paths = {"tmp": str(tmp_path), "not_a_bundle": str(_not_a_bundle(tmp_path)),
             "bundle_without_traces": str(_bundle_without_traces(tmp_path))}
    argv = [a.format(**paths) if a.startswith("{") else a for a in argv]
    module = bench(script)
    with pytest.raises(SystemExit) as exited:
        module.main(argv)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert message in err, err
    assert err.startswith("usage: ") and "Traceback" not in err
    assert out == ""  # nothing measured, nothing printed


def test_every_script_reads_its_values_through_arguments() -> None:
    """No option of a benchmark is read as a bare int or float (a negative count, a zero pause: a traceback or a
    meaningless run); its values go through :mod:`benchmarks.arguments`."""
    for script in sorted(BENCHMARKS.glob("*.py")):
        text = script.read_text()
        assert "type=int" not in text.replace('"--seed", type=int', ""), script.name  # a seed is any integer
        assert "type=float" not in text, script.name

