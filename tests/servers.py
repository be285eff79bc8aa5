"""Servers the tests start (``mlflow server``, ``spa-tune ui``): own process group, stopped by its id."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:  # state, ppid, pgrp
            members.append(int(entry))
    return members


class Server:
    """A command serving HTTP on 127.0.0.1:``port``, leading its own process group, output in ``log_path``."""

    def __init__(self, command: list[str], port: int, log_path: Path, cwd: Path | None = None,
                 env: dict[str, str] | None = None):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = Path(log_path)
        env = {**os.environ, **(env or {}), "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=cwd,
            )
        self.pgid = self.process.pid  # start_new_session: the server leads its own group

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until ``/health`` answers; fail with the server's output if it exits or never answers."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"server did not answer within {timeout:.0f} s:\n{self.log_path.read_text()}")

    def stop(self, timeout: float = 20.0) -> list[int]:
        """SIGTERM the process group (SIGKILL what outlives ``timeout``); the pids that were left over."""
        try:
            os.killpg(self.pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.time() + timeout
        while group_members(self.pgid) and time.time() < deadline:
            self.process.poll()  # reap the leader
            time.sleep(0.2)
        left = group_members(self.pgid)
        if left:
            os.killpg(self.pgid, signal.SIGKILL)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        return left


def mlflow_server(store_uri: str, port: int, log_path: Path, cwd: Path | None = None,
                  artifacts: str | None = None, env: dict[str, str] | None = None) -> Server:
    """A real ``mlflow server`` for ``store_uri`` on 127.0.0.1:``port`` (one worker).

    ``artifacts`` is its ``--artifacts-destination`` (``s3://bucket/path`` as on a cluster's head);
    ``env`` is added to its environment (credentials and endpoint of that store).
    """
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store_uri,
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    if artifacts:
        command += ["--artifacts-destination", artifacts]
    return Server(command, port, log_path, cwd, env)
