"""./test runs the quick suite, ./test --slow the whole one (tests/slow_tests.py): a small suite run as ./test runs it.

The tests marked slow are left out when nothing chose the tests, on xdist's two workers too (they collect, the
controller decides); ``--slow``, naming a file and ``-m`` run what they ask for.
"""

from __future__ import annotations

import pytest

from conformity.paths import SOURCE_ROOT

pytest_plugins = ["pytester"]

QUICK = '''
import pytest

@pytest.mark.parametrize("n", range(3))
def test_quick(n):
    pass
'''

SLOW = '''
import pytest
pytestmark = pytest.mark.slow

def test_slow_one():
    pass

def test_slow_two():
    pass
'''

ONE_SLOW = '''
import pytest

@pytest.mark.slow
def test_marked():
    pass

def test_not_marked():
    pass
'''


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makepyfile(test_quick=QUICK, test_slow=SLOW, test_mixed=ONE_SLOW)
    pytester.makeini("[pytest]\nmarkers =\n    slow: long-running tests\n")
    monkeypatch.setenv("PYTHONPATH", str(SOURCE_ROOT))  # the subprocess imports tests.slow_tests
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the plugins named only: a lighter start
    return pytester


def run(suite: pytest.Pytester, *args: str, workers: bool = False) -> pytest.RunResult:
    xdist = ("-p", "xdist", "-n", "2", "--dist", "loadgroup") if workers else ()
    return suite.runpytest_subprocess(*xdist, "-p", "tests.slow_tests", "-p", "no:cacheprovider", "--strict-markers",
                                      *args)


def test_the_quick_suite_leaves_the_slow_tests_out_on_two_workers_too(suite: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = run(suite, workers=True)
    result.assert_outcomes(passed=4)  # xdist's controller does not count what its workers deselected
    assert "2 workers [4 items]" in result.stdout.str()
    result.stdout.fnmatch_lines(["*usine: the quick suite (tests marked slow left out; ./test --slow runs the whole*"])


def test_slow_runs_the_whole_suite(suite: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = run(suite, "--slow", workers=True)
    result.assert_outcomes(passed=7)
    assert "usine: the quick suite" not in result.stdout.str()


def test_tests_named_or_chosen_by_a_marker_run_slow_or_not(suite: pytest.Pytester) -> None:
    run(suite, "test_slow.py").assert_outcomes(passed=2)
    run(suite, "test_mixed.py::test_marked").assert_outcomes(passed=1)
    run(suite, "-m", "slow").assert_outcomes(passed=3, deselected=4)
    run(suite, "-m", "not slow").assert_outcomes(passed=4, deselected=3)
