"""Bad input seen while probing, payment side: each a clear error (exit 2, no traceback), nothing paid or written.

TOML nested 5,000 deep in the payer or payees file; a wave whose price, cap or proof-of-use window
would overflow the ledger's integers; and any line of an events file, however broken, is a refusal
with a reason, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformity.payments import reasons
from tests.payments.builders import T0, event, events_for, installation
from tests.payments.workspace import REPO, Workspace

SITE = installation("750100011", "M")
DEEP_TOML = {"arrays": "x = " + "[" * 5000 + "]" * 5000 + "\n",
             "inline tables": "x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n"}


@pytest.mark.parametrize("which", ["payees", "payer"])
@pytest.mark.parametrize("shape", sorted(DEEP_TOML))
def test_toml_nested_5000_deep_is_refused(ws: Workspace, tmp_path: Path, which: str, shape: str) -> None:
    ws.label()
    deep = tmp_path / f"{which}.toml"
    deep.write_text(f'format = "usine.{which}/1"\n' + DEEP_TOML[shape], encoding="utf-8")
    f = ws.events("e.jsonl", events_for(SITE, 5))
    if which == "payees":
        ws.payees = deep
        r = ws.run(f)
    else:
        args = ws.args((f,), ws.root / "o", "2027-06-30T23:59:59Z", "2026-W1")
        args[args.index("--payer") + 1] = str(deep)
        r = ws.run(f, extra=("--payer", str(deep)))
    assert r.returncode == 2, r.stderr
    assert "nested too deeply" in r.stderr and str(deep) in r.stderr and "Traceback" not in r.stderr
    assert not ws.ledger.exists()


def _catalog(tmp_path: Path, old: str, new: str) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(REPO / "referentials", root / "referentials")
    shutil.copytree(REPO / "waves", root / "waves")
    wave = root / "waves" / "2026-W1.toml"
    text = wave.read_text(encoding="utf-8")
    assert old in text
    wave.write_text(text.replace(old, new, 1), encoding="utf-8")
    return root


OVERFLOWS = {
    "price": ("M = 62_000", "M = 100_000_000_000_000_000_000", "funding.prices.HOSPITAL.M"),
    "price just over the bound": ("M = 62_000", "M = 10_000_001", "funding.prices.HOSPITAL.M"),
    "price zero": ("M = 62_000", "M = 0", "funding.prices.HOSPITAL.M"),
    "cap": ("cap_per_software = 8_000_000", "cap_per_software = 92_233_720_368_547_758", "funding.cap_per_software"),
    "within_days": ("within_days = ", "within_days = 1_000_000_000_000_000 # ", "within_days"),
}


@pytest.mark.parametrize("case", sorted(OVERFLOWS))
def test_a_price_cap_or_window_that_would_overflow_the_ledger_is_refused_by_the_wave_schema(
        ws: Workspace, tmp_path: Path, case: str) -> None:
    old, new, where = OVERFLOWS[case]
    ws.catalog = _catalog(tmp_path, old, new)
    ws.label()
    r = ws.run(ws.events("e.jsonl", events_for(SITE, 5)))
    assert r.returncode == 2, r.stderr
    assert "2026-W1.toml" in r.stderr and where in r.stderr and "Traceback" not in r.stderr
    assert not ws.ledger.exists() and not r.out.exists()


def test_the_largest_allowed_price_and_cap_are_paid_exactly(ws: Workspace, tmp_path: Path) -> None:
    root = _catalog(tmp_path, "M = 62_000", "M = 10_000_000")
    wave = root / "waves" / "2026-W1.toml"
    wave.write_text(wave.read_text().replace("cap_per_software = 8_000_000", "cap_per_software = 10_000_000_000"))
    ws.catalog = root
    ws.label()
    r = ws.run(ws.events("e.jsonl", events_for(SITE, 5)))
    assert r.returncode == 0, r.stderr
    assert [o["amount"] for o in r.orders] == ["10000000.00"]


# ---------------------------------------------------------------------------------------------- any line
_TEMPLATE = event(SITE, T0, 0)
_NASTY = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False),
    st.text(max_size=30), st.just("\ud800"), st.just("9999-12-31T23:59:59-23:59"), st.just("0001-01-01T00:00:00Z"),
    st.just([[[[[[[[]]]]]]]]), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))


@st.composite
def broken_lines(draw: st.DrawFn) -> str:
    """A data-received event with one member anywhere replaced by something nasty, or raw junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["[" * 100_000, "{}", '{"data": ' * 2000, "\x00", "1e999999", '"\\ud800"']))
    ev = json.loads(json.dumps(_TEMPLATE))
    ev["id"] = f"evt-{draw(st.integers(0, 10**6))}"
    path = draw(st.sampled_from([("time",), ("id",), ("source",), ("specversion",), ("subject",), ("data",),
                                 ("data", "bytes"), ("data", "site", "size"), ("data", "software", "version"),
                                 ("data", "wave"), ("data", "kind"), ("data", "site"), ("extension",)]))
    node = ev
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = draw(_NASTY)
    return json.dumps(ev)  # a lone surrogate travels escaped, as "\\ud800"


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(broken_lines(), min_size=1, max_size=12))
def test_any_broken_line_is_a_refusal_with_a_reason_never_a_traceback(ws: Workspace, lines: list[str]) -> None:
    if not any(ws.labels.glob("lbl_*.json")):
        ws.label()
    good = events_for(installation("690200022", "M"), 2, start=T0 + dt.timedelta(days=30), first=1000)
    f = ws.events(f"fuzz-{ws.runs}.jsonl", [*lines, *good])
    stats = ws.run_inproc(f)  # raises on any traceback
    assert stats.lines == len(lines) + 2
    report = json.loads((ws.root / f"out{ws.runs}" / "refusals.json").read_text())
    assert set(report["counts"].get("event", {})) <= set(reasons.ALL_REASONS)
    assert stats.counted + stats.refused + stats.other_wave + stats.after_payment >= 2
