"""A real multi-process Ray cluster on this machine: ``ray start --head`` plus worker nodes, on loopback.

The Ray engine is tested and benchmarked on a true cluster (a GCS, one raylet per node, an object store per node,
tasks scheduled across nodes) rather than on ``ray.init()``'s single in-process node, because that is what a
production cluster looks like; only the machines are missing.

Every port is chosen free, the temp dir is private and the cluster is stopped by killing exactly the processes its
``ray start --block`` commands started (we never call ``ray stop``, which would kill every Ray process of the user,
other people's included).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from iconoscope.errors import IconoscopeError
from iconoscope.scale.virtuoso import die_with_parent, free_port

MB = 1 << 20


def _ray_executable() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else (shutil.which("ray") or "ray")


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d.name))
    return kids


def _descendants(root: int) -> list[int]:
    kids = _children()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def _port_block(n: int = 40) -> int:
    """The first of ``n`` consecutive free ports (for the worker processes' gRPC servers)."""
    import socket

    for _ in range(50):
        base = random.randint(20_000, 59_000)
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise IconoscopeError("no block of free ports found for Ray workers")


class LocalRayCluster:
    """A head node and ``workers`` worker nodes, each with ``cpus_per_node`` CPUs, on 127.0.0.1.

    ``address`` is what ``ray.init(address=...)`` (or ``RAY_ADDRESS``) takes. Object stores are kept small
    (``object_store_mb`` each) because this machine is shared.
    """

    def __init__(self, workers: int = 1, cpus_per_node: int = 1, object_store_mb: int = 100,
                 start_timeout_s: float = 90.0):
        self.workers = workers
        self.cpus_per_node = cpus_per_node
        self.object_store_mb = object_store_mb
        self.start_timeout_s = start_timeout_s
        self.temp_dir = Path(tempfile.mkdtemp(prefix="icoray-"))  # short: Ray's socket paths must stay < 108 chars
        self.port = 0
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def num_cpus(self) -> int:
        return self.cpus_per_node * (1 + self.workers)

    def _node_args(self) -> list[str]:
        base = _port_block()
        return ["--block", "--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus_per_node}",
                f"--object-store-memory={self.object_store_mb * MB}", "--disable-usage-stats",
                f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
                f"--min-worker-port={base}", f"--max-worker-port={base + 39}",
                f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
                f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}"]

    def _spawn(self, args: list[str], name: str) -> None:
        log = open(self.temp_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child process
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        try:
            # SIGTERM when we die: 'ray start --block' then stops the processes it started
            self._procs.append(subprocess.Popen([_ray_executable(), "start", *args], stdout=log,
                                                stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                                preexec_fn=die_with_parent(signal.SIGTERM)))
        finally:
            log.close()

    def start(self) -> LocalRayCluster:
        self.port = free_port()
        self._spawn(["--head", f"--port={self.port}", "--include-dashboard=false",
                     f"--temp-dir={self.temp_dir}",
                     *self._node_args()], "head")
        try:
            self._wait_for_gcs()
            for i in range(self.workers):
                self._spawn([f"--address={self.address}", *self._node_args()], f"worker{i}")
            self._wait_for_nodes()
        except BaseException:
            self.stop()
            raise
        return self

    def _check_alive(self) -> None:
        for i, p in enumerate(self._procs):
            if p.poll() is not None:
                name = "head" if i == 0 else f"worker{i - 1}"
                log = (self.temp_dir / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
                raise IconoscopeError(f"ray start ({name}) exited with code {p.returncode}:\n" + "\n".join(log))

    def _wait_for_gcs(self) -> None:
        import socket

        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            with socket.socket() as s:
                s.settimeout(1.0)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.3)
        raise IconoscopeError(f"the Ray head did not open port {self.port} within {self.start_timeout_s:.0f} s")

    def _wait_for_nodes(self) -> None:
        """Until every node has registered with the GCS (asked with the GCS client, without joining as a driver)."""
        from ray._raylet import GcsClient  # the client ray's own CLI uses for 'ray status'

        client = GcsClient(address=self.address)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                nodes = client.get_all_node_info(timeout=5)
                alive = [n for n in nodes.values() if n.state == 0]  # GcsNodeInfo.ALIVE
                if len(alive) >= 1 + self.workers:
                    return
            except Exception:  # the GCS answers only once its tables are up
                pass
            time.sleep(0.5)
        raise IconoscopeError(f"the Ray cluster at {self.address} did not reach {1 + self.workers} nodes "
                              f"within {self.start_timeout_s:.0f} s (logs in {self.temp_dir})")

    def stop(self) -> None:
        """Kill every process the ``ray start`` commands started (workers first), then delete the temp dir."""
        pids: list[int] = []
        for p in reversed(self._procs):
            pids.extend(pid for pid in _descendants(p.pid) if pid not in pids)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while sig == signal.SIGTERM and time.monotonic() < deadline:
                for p in self._procs:
                    p.poll()
                if not any(Path(f"/proc/{pid}").exists() and not _is_zombie(pid) for pid in pids):
                    break
                time.sleep(0.2)
        for p in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
        self._procs = []
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _is_zombie(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) == "Z"
    except OSError:
        return True
