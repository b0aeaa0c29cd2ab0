"""RefApp's technical log: one file per test session, at DEBUG level, with the requests it makes.

``REFAPP_LOG_DIR`` (set in vendor.toml) is where the files go: ``refapp-<session id>.log``, the path
the manifest declares in ``log_files`` so the harness can search them (SECURITY-008). Files older
than an hour are removed when a session starts (the test installation's retention).
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from refapp import defects

LOG = logging.getLogger("refapp")
RETENTION_SECONDS = 3600
LOG_HEADERS = defects.register("logs-bearer-token", "logs every request's headers at DEBUG level, the "
                                                    "Authorization header (the access token) included")


def start(session_id: str) -> None:
    """Log this session to ``$REFAPP_LOG_DIR/refapp-<session id>.log`` (nothing when the variable is unset)."""
    folder = os.environ.get("REFAPP_LOG_DIR")
    if not folder:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("refapp-*.log"):
        try:
            if time.time() - old.stat().st_mtime > RETENTION_SECONDS:
                old.unlink()
        except OSError:
            pass
    handler = logging.FileHandler(path / f"refapp-{session_id}.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    stop()
    LOG.handlers[:] = [handler]
    LOG.setLevel(logging.DEBUG)
    LOG.propagate = False


def stop() -> None:
    """Close the session's log file (the session ended; the process may serve another)."""
    for handler in LOG.handlers[:]:
        handler.close()
    LOG.handlers.clear()


#: path segments that name a patient (the shared record's listing is /patients/{INS}/documents)
PATIENT_SEGMENT = re.compile(r"(/patients/)[^/]+")


def log_request(request: httpx.Request) -> None:
    """What RefApp logs of each request: method and URL without its query, the patient's INS masked (no personal
    data, no secret)."""
    url = urlsplit(str(request.url))
    LOG.info("-> %s %s://%s%s", request.method, url.scheme, url.netloc, PATIENT_SEGMENT.sub(r"\1{ins}", url.path))
    if defects.active(LOG_HEADERS):
        LOG.debug("   headers %s", dict(request.headers))


def log_response(response: httpx.Response) -> None:
    LOG.info("<- %s %s", response.status_code, response.request.method)
