"""One ``usine sandbox serve`` at a time on a state folder: its events log has one writer, which keeps the chain of
signed segments in memory. Two processes on one folder both answered 201 to production deposits, then sealed
segments over each other's lines: the payment run refused them (``event-segment-mismatch``), the events unpaid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from sandbox.server import child_server

ADMIN = "serve-lock-test-admin-token-0123456789"


def test_a_second_sandbox_on_a_served_state_folder_is_refused_naming_the_first(tmp_path: Path) -> None:
    data = tmp_path / "data"

    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "conformity", "sandbox", "serve", "--port", str(port), "--data", str(data)]

    def up(port: int) -> bool:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200

    env = {**os.environ, "USINE_SANDBOX_ADMIN_TOKEN": ADMIN}
    with (tmp_path / "serve.log").open("wb") as log, \
            child_server(command, up, timeout=90, env=env, log=log, interval=0.2) as (first, port):
        second = subprocess.run(command(0), capture_output=True, text=True, timeout=60, env=env)
        assert second.returncode == 2, second.stderr
        assert f"the sandbox state folder {data} is in use by another process (pid {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200  # the first serves on
    again = subprocess.Popen(command(0), stderr=subprocess.PIPE, text=True, env=env)  # the lock went with the first
    try:
        assert again.stderr is not None
        assert "usine sandbox on" in again.stderr.readline()
        assert again.poll() is None
    finally:
        again.terminate()
        again.wait(30)
