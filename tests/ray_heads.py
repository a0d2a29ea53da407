"""Real local Ray heads for tests: a plain or token head, fake GPUs, and a fake autoscaling cluster."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

RAY_BIN = Path(sys.executable).parent  # the venv's `ray` CLI, so the head runs the Ray this process imports


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cmdline(pid: int) -> str:
    """The command line of `pid` as one string ('' once it has gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (with the pid it names one process, even after the pid is reused); None once dead."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]  # a zombie has ended: only its parent's wait is left


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    return children


def descendants(*pids: int) -> list[int]:
    """Every process started under `pids` (a driver's local Ray, a raylet's workers), not the pids themselves."""
    children, found, todo = _children(), [], list(pids)
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pids_naming(marker: str) -> list[int]:
    """Live processes whose command line names `marker` (a head's private temp dir), never this process."""
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and int(p.name) != os.getpid() and marker in cmdline(int(p.name))
    ]


def kill_leftovers(marker: str) -> None:
    """Processes of a head we started (their command lines name its private temp dir), by pid."""
    for pid in pids_naming(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def fake_autoscaling_config(
    worker_types: dict[str, Any], gcs_address: str, max_workers: int, idle_timeout_minutes: float = 0.1
) -> dict[str, Any]:
    """A whole config for Ray's fake_multinode provider (the wheel lacks its example.yaml), head with 0 CPUs.

    `worker_types` maps a node type to {resources, min_workers, max_workers} (node_config may be left out).
    """
    types = {name: {"node_config": {}, **spec} for name, spec in worker_types.items()}
    types["ray.head.default"] = {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0}
    return {
        "cluster_name": "fake_multinode",
        "max_workers": max_workers,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": gcs_address,
        },  # else the fake nodes look for a GCS on port 6379
        "available_node_types": types,
        "head_node_type": "ray.head.default",
        "auth": {},
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_timeout_minutes,
        "docker": {},
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
    }


class Head:
    """`ray start --head --block` on free ports of 127.0.0.1 and a private temp dir, stopped by pid.

    token: run with RAY_AUTH_MODE=token and this token; None: with RAY_AUTH_MODE=disabled.
    autoscaling_config: start it as ray.cluster_utils.AutoscalingCluster does (fake nodes on this machine),
    without its `ray stop --force`; the head's CPUs and GPUs are then the config's head node type resources,
    not num_cpus / num_gpus, and the config's provider is pointed at this head's GCS.
    """

    def __init__(
        self,
        token: str | None = None,
        num_cpus: int = 2,
        num_gpus: int = 0,
        autoscaling_config: dict[str, Any] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.token = token
        self.tmp = tempfile.mkdtemp(prefix="gbh", dir="/tmp")  # short: Ray's socket paths have a length limit
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.gcs_address = f"127.0.0.1:{self.gcs_port}"  # what ray.init(address=...) and --address take
        self.url = f"http://127.0.0.1:{self.dashboard_port}"  # the dashboard and its Jobs API
        env = self._env(extra_env)
        args = [f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}"]
        if autoscaling_config is not None:
            args = self._autoscaling_args(autoscaling_config)
            env.update(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1")  # as AutoscalingCluster.start
        cmd = [
            str(RAY_BIN / "ray"),
            "start",
            "--head",
            "--block",
            *args,
            f"--port={self.gcs_port}",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--temp-dir={self.tmp}",
            "--disable-usage-stats",
        ]
        self.log = open(Path(self.tmp) / "head.log", "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self._stopped = False

    def _env(self, extra_env: dict[str, str] | None) -> dict[str, str]:
        # No RAY_* of this process (RAY_ADDRESS, a token, test switches) may reach the head.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env["PATH"] = f"{RAY_BIN}:{env.get('PATH', '')}"
        # Explicit either way: with RAY_AUTH_MODE unset, `ray start` turns token auth on whenever
        # ~/.ray/auth_token exists, and any local ray.init() on this machine writes that file.
        if self.token is not None:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token)
        else:
            env["RAY_AUTH_MODE"] = "disabled"
        env.update(extra_env or {})
        return env

    def _autoscaling_args(self, config: dict[str, Any]) -> list[str]:
        config = copy.deepcopy(config)
        config["provider"]["gcs_address"] = self.gcs_address  # the fake nodes must join this head, no other
        path = Path(self.tmp) / "autoscaling.json"
        path.write_text(json.dumps(config))
        head = config["available_node_types"][config["head_node_type"]]["resources"]
        return [f"--autoscaling-config={path}", f"--num-cpus={head.get('CPU', 0)}", f"--num-gpus={head.get('GPU', 0)}"]

    def _log_tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-3000:]

    def _poll(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the head exited:\n{self._log_tail()}"
            if ready():
                return
            time.sleep(0.5)
        raise AssertionError(f"{what} did not come up in {timeout:.0f} s:\n{self._log_tail()}")

    def wait_gcs(self, timeout: float = 60) -> None:
        """Until the GCS accepts TCP connections on its port."""

        def accepts() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.gcs_port), timeout=1).close()
                return True
            except OSError:
                return False

        self._poll(accepts, "the GCS", timeout)

    def wait_ready(self, timeout: float = 90) -> None:
        """Until the GCS is up and the Jobs API answers (with the token, if the head has one): the head is usable."""
        import requests

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}

        def answers() -> bool:
            try:
                return requests.get(f"{self.url}/api/jobs/", headers=headers, timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        self.wait_gcs(timeout)
        self._poll(answers, "the Jobs API", timeout)

    def processes(self) -> dict[int, str]:
        """Every process of this head now, pid -> start time (for `alive`), fake autoscaled nodes included.

        Fake nodes are children of the autoscaler's monitor, not on Ray's own shutdown list, and Ray's
        workers and agents rename themselves (ray::IDLE), losing the temp dir: so descendants, and the marker.
        """
        pids = pids_naming(self.tmp)
        if self.proc.poll() is None:  # once it has ended, its descendants belong to init
            pids += descendants(self.proc.pid)
        return {pid: started for pid in pids if (started := _start_time(pid)) is not None}

    def stop(self) -> None:
        """End every process of this head, by pid, and remove its temp dir; a second call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        noted = self.processes()  # before the `ray start` parent goes: its descendants are reparented then
        self.proc.terminate()  # `ray start --block` stops its own Ray processes on SIGTERM
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for _ in range(5):  # a process killed while starting another may leave that one behind
            left = [*alive(noted), *pids_naming(self.tmp)]
            left += descendants(*left)
            if not left:
                break
            for pid in left:
                noted.setdefault(pid, _start_time(pid) or "")
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.2)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def alive(processes: dict[int, str]) -> list[int]:
    """The pids of `processes` (pid -> start time, from Head.processes) still running: not ended, not reused."""
    return [pid for pid, started in processes.items() if _start_time(pid) == started]


@contextlib.contextmanager
def connect(head: Head) -> Iterator[Any]:
    """This process as a driver of `head` (ray.init on its GCS address), shut down afterwards; yields ray."""
    import ray

    if ray.is_initialized():  # left by an earlier test: ray.init would refuse to connect again
        ray.shutdown()
    ray.init(address=head.gcs_address, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
