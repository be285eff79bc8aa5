"""A real multi-node Ray cluster on this machine: a head and GPU-advertising workers started with `ray start`.

Every node runs on this machine (the head advertises this machine's own address); token
authentication stays on, with a fresh token handed to every node and to the driver through
RAY_AUTH_TOKEN. Stopping kills exactly the processes of this cluster, found by its own temp folder,
and their children; other Ray runtimes on the machine are left alone.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def free_port_above(low: int) -> int:
    """A free TCP port >= ``low``."""
    while (port := free_port()) < low:
        pass
    return port


def kill_processes(processes: list[psutil.Process], timeout: float = 20) -> list[int]:
    """SIGKILL each process by its id and wait; the ids still alive afterwards (none, normally)."""
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return [p.pid for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@dataclass
class LocalCluster:
    """Handle on a running local cluster: its address, the environment that reaches it, its nodes."""

    address: str
    env: dict[str, str]
    temp_dir: Path
    client_address: str = ""  # ray://host:port of the head's Ray Client server, when started with one
    head_id: str = ""
    worker_ids: list[str] = field(default_factory=list)

    def run_ray(self, *args: str, timeout: float = 120) -> str:
        """Run a `ray` CLI command with the cluster's token; its output."""
        done = subprocess.run([RAY, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"ray {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return done.stdout + done.stderr

    def nodes(self) -> list[dict]:
        """``ray.nodes()`` as a driver of this cluster sees them."""
        code = f"import json, ray; ray.init(address={self.address!r}, logging_level='ERROR'); print(json.dumps(ray.nodes()))"
        done = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=120)
        return json.loads(done.stdout.strip().splitlines()[-1])

    def processes(self) -> list[psutil.Process]:
        """Every process of this cluster: those naming its temp folder, and their descendants."""
        roots = []
        for proc in psutil.process_iter(["cmdline"]):
            if any(str(self.temp_dir) in part for part in (proc.info["cmdline"] or [])):
                roots.append(proc)
        found = {p.pid: p for p in roots}
        for proc in roots:
            try:
                found.update({c.pid: c for c in proc.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
        return list(found.values())

    def raylet_of(self, node_id: str) -> psutil.Process:
        """The raylet process of one node."""
        for proc in self.processes():
            try:
                cmdline = " ".join(proc.cmdline())
            except psutil.NoSuchProcess:
                continue
            if "raylet/raylet" in cmdline and f"--node_id={node_id}" in cmdline:
                return proc
        raise LookupError(f"no raylet for node {node_id}")

    def stop(self) -> list[int]:
        """Kill every process of the cluster by its id; the ids still alive afterwards (none, normally)."""
        return kill_processes(self.processes())


def start_cluster(workers: int = 2, worker_cpus: int = 1, ray_client: bool = False) -> LocalCluster:
    """A head (no GPU, one CPU) and ``workers`` nodes advertising one GPU each, all on this machine.

    Token authentication is on, except with ``ray_client``: Ray 2.60's client server cannot start
    its per-client server while token authentication is on (it fails, with empty logs), so a cluster
    for testing ``ray://`` addresses runs without it.
    """
    temp = Path(tempfile.mkdtemp(prefix="spa-ray-", dir="/tmp"))  # short: Ray's socket paths must stay short
    if ray_client:
        env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    else:
        env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_ADDRESS", None)
    cluster = LocalCluster(address="", env=env, temp_dir=temp)
    try:
        # a client port above Ray's worker port range (10002-19999)
        client = [f"--ray-client-server-port={free_port_above(20000)}"] if ray_client else []
        out = cluster.run_ray(
            "start", "--head", f"--port={free_port()}", "--num-cpus=1", "--num-gpus=0",
            "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats", *client,
        )
        cluster.address = re.search(r"ray start --address='([^']+)'", out)[1]
        if ray_client:
            cluster.client_address = f"ray://{cluster.address.rsplit(':', 1)[0]}:{client[0].split('=')[1]}"
        for _ in range(workers):
            cluster.run_ray(
                "start", f"--address={cluster.address}", f"--num-cpus={worker_cpus}", "--num-gpus=1",
                "--disable-usage-stats",
            )
        deadline = time.time() + 60
        while time.time() < deadline:
            nodes = [n for n in cluster.nodes() if n["Alive"]]
            if len(nodes) == workers + 1:
                break
            time.sleep(1)
        cluster.head_id = next(n["NodeID"] for n in nodes if not n["Resources"].get("GPU"))
        cluster.worker_ids = [n["NodeID"] for n in nodes if n["Resources"].get("GPU")]
        assert len(cluster.worker_ids) == workers, nodes
        return cluster
    except BaseException:
        cluster.stop()
        shutil.rmtree(temp, ignore_errors=True)
        raise
