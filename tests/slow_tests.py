"""The quick suite and the whole one: ``./test`` leaves out the tests marked ``slow``; ``./test --slow`` runs them too
(CI does, ``.ci/run``).

Slow tests are the ones whose cost is a real part started for them or many full runs: every defective vendor's
real wave run, the Spark engine on its JVM, the wheel built and installed, the payments properties (hundreds of
payment runs). They are left out only when nothing else chose the tests: naming files or tests on the command line
(``./test tests/payments/test_spark_engine.py``) or a marker expression (``-m slow``) runs what it names. xdist's
workers read the same command line (they collect), so each takes the controller's decision.
"""

from __future__ import annotations

import pytest

OPTION = "usine_quick"  #: on config.option: leave the slow tests out


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False,
                     help="usine: run the tests marked slow too, the whole suite (as CI does)")


def pytest_configure(config: pytest.Config) -> None:
    named = config.args_source == pytest.Config.ArgsSource.ARGS
    setattr(config.option, OPTION, not (config.option.slow or config.option.markexpr or named))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not getattr(config.option, OPTION, False):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


def pytest_report_header(config: pytest.Config) -> str | None:
    if getattr(config.option, OPTION, False):
        return "usine: the quick suite (tests marked slow left out; ./test --slow runs the whole suite, as CI does)"
    return None
