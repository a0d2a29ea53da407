"""The private local Ray of a sweep (and of `genbench train --workers`) listens on 127.0.0.1 only, token auth on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from listening import listeners
from ray_heads import descendants

pytestmark = pytest.mark.ray

# A driver as dry-run, sweep and train start it (start_local_ray, with the dashboard Ray Train needs), with two
# workers and an actor alive (Tune's trials are actors), that waits for a line on stdin while the test looks.
DRIVER = """
import json, os, sys
import ray
from genbench.sweep.connect import start_local_ray

start_local_ray(num_cpus=2, dashboard=True)

@ray.remote
def pid():
    return os.getpid()

@ray.remote
class Trial:
    def pid(self):
        return os.getpid()

trial = Trial.remote()
workers = ray.get([pid.remote() for _ in range(2)] + [trial.pid.remote()])
node = ray._private.worker.global_worker.node
# After the start the driver is back in Ray's cluster mode: a later ray.init(address=HOST:PORT) joins by real address.
after = [ray._private.ray_constants.ENABLE_RAY_CLUSTER, os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")]
print(json.dumps({"gcs": node.gcs_address, "node_ip": node.node_ip_address, "dashboard": node.webui_url,
                  "workers": workers, "after": after}), flush=True)
sys.stdin.readline()
ray.shutdown()
"""


@pytest.fixture(scope="module")
def private_ray() -> tuple[dict, list, tuple[int, int]]:
    """(what the driver printed, every listening socket of its process tree, the Jobs API's answers without and
    with the token) while its Ray runs."""
    from genbench.cluster.jobs import auth_token

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line, proc.stderr.read()  # type: ignore[union-attr]
        info = json.loads(line)
        found = listeners([proc.pid, *descendants(proc.pid)])
        url = f"http://{info['dashboard']}/api/jobs/"
        answers = (
            requests.get(url, timeout=10).status_code,
            requests.get(url, timeout=10, headers={"Authorization": f"Bearer {auth_token()}"}).status_code,
        )
        proc.stdin.write("\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()  # its Ray's processes end with the driver that started them (Ray's reaper)
    return info, found, answers


def test_every_socket_of_the_private_ray_is_on_loopback(private_ray: tuple[dict, list, tuple[int, int]]) -> None:
    info, found, _ = private_ray
    assert info["node_ip"] == "127.0.0.1" and info["gcs"].startswith("127.0.0.1:")
    pids = {s.pid for s in found}
    assert len(found) >= 8 and set(info["workers"]) <= pids, found  # GCS, raylet, dashboard, agents, workers
    outside = [s for s in found if not s.loopback()]
    assert not outside, f"listening beyond loopback: {outside}"
    assert info["after"] == [True, None]  # the driver's cluster mode restored once its private Ray has started


def test_token_authentication_stays_on(private_ray: tuple[dict, list, tuple[int, int]]) -> None:
    """Its Jobs API (on 127.0.0.1) refuses a request without the token and answers one with it."""
    info, _, (without, with_token) = private_ray
    assert info["dashboard"].startswith("127.0.0.1:")
    assert without in (401, 403) and with_token == 200
