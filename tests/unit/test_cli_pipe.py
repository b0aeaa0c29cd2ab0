"""A command whose reader goes away (``usine … | head``) ends quietly, as a tool SIGPIPE ends, not with an error."""

from __future__ import annotations

import subprocess
import sys

from conformity.cli import EXIT_BROKEN_PIPE


def test_a_closed_output_pipe_ends_the_command_quietly() -> None:
    """It printed "error: Broken pipe" and exited 2 (bad input), which a script with pipefail read as the user's
    mistake."""
    process = subprocess.Popen([sys.executable, "-m", "conformity", "referentials", "list"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader gone before the first line
    errors = process.stderr.read().decode()
    assert process.wait(timeout=60) == EXIT_BROKEN_PIPE == 141
    assert errors == ""
