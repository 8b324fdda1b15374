"""Servers of our own for tests and scripts: free loopback ports, ``rag chat`` started and stopped.

Each server runs in its own process group on 127.0.0.1, is configured by flags only,
and is stopped (SIGTERM, then SIGKILL) by :meth:`Server.stop`, also on failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The client libraries would phone home on every Client(); tests and load runs talk to loopback only.
QUIET_ENV = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A ``rag chat`` process of our own, in its own process group; :meth:`stop` ends the group."""

    process: subprocess.Popen
    url: str
    log: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to the process group, then SIGKILL if it has not gone after ``timeout`` seconds; drop the log."""
        if self._stopped:
            return
        self._stopped = True
        self.log.unlink(missing_ok=True)  # errors quote its end already
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process.wait()


def start_server(
    corpus: Path,
    index_dir: Path,
    *,
    cache_dir: Path | None = None,
    port: int | None = None,
    host: str | None = "127.0.0.1",
    extra_args: Sequence[str] = (),
    timeout: float = 300,
    ready: bool = True,
) -> Server:
    """Start ``rag chat`` on a free port (or ``port``) and wait until it answers HTTP on 127.0.0.1.

    The page is served at once; with ``ready`` (the default) this also waits until the server has
    indexed ``corpus`` and loaded its model ("rag chat: ready at" in its log), as a client that asks
    at once needs. The first run indexes ``corpus`` into ``index_dir`` (seconds for ``seeds/``). The server
    is configured by flags only: ``RAG_*`` variables of this process are not passed on, and
    ``host=None`` leaves ``--host`` out, so the command's own default applies.

    Raises:
        RuntimeError: the server exited or did not answer within ``timeout`` seconds (with its log's end).
    """
    port = port or free_port()
    cmd = [sys.executable, "-m", "ui.cli", "chat", "--port", str(port)]
    cmd += ["--host", host] if host else []
    cmd += ["--corpus", str(corpus), "--index-dir", str(index_dir), *extra_args]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    fd, name = tempfile.mkstemp(prefix="load-chat-server-", suffix=".log")
    log = Path(name)
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAG_")} | QUIET_ENV
    with os.fdopen(fd, "wb") as out:
        process = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}/", log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"rag chat exited with status {process.returncode}:\n{server.log_tail()}")
            if answers_http(server.url) and (not ready or "rag chat: ready at" in server.log_tail(100_000)):
                return server
            if time.monotonic() > deadline:
                tail = server.log_tail()
                raise RuntimeError(f"rag chat did not answer on {server.url} within {timeout:.0f} s:\n{tail}")
            time.sleep(0.5)
    except BaseException:
        server.stop()
        raise


def answers_http(url: str) -> bool:
    """Whether a web server answers at ``url`` (a login-protected one answers 401: that counts)."""
    try:
        with urllib.request.urlopen(url + "config", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
