"""Run one Python snippet in several real processes released at the same moment (trials racing on a node)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

START_TIMEOUT_S = 120  # imports (torch) on a loaded 2-core machine


def run_together(
    setup: str, action: str, n: int, folder: Path, timeout: float = 120
) -> list[subprocess.CompletedProcess]:
    """Start n processes that run `setup` (imports), wait until all are ready, then run `action` at once.

    Returns each process's completed result (stdout and stderr as text); fails when one exits non-zero.
    """
    go = folder / "go"
    script = (
        f"{setup}\nimport pathlib as _p, sys as _s, time as _t\n_p.Path(_s.argv[1]).touch()\n"
        f"while not _p.Path({str(go)!r}).exists():\n    _t.sleep(0.005)\n{action}\n"
    )
    ready = [folder / f"ready-{i}" for i in range(n)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(r)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for r in ready
    ]
    try:
        _wait_ready(ready, procs)
        go.touch()
        outputs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    results = [subprocess.CompletedProcess(p.args, p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    return results


def _wait_ready(ready: list[Path], procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not all(r.exists() for r in ready):
        dead = [p for p in procs if p.poll() is not None]
        assert not dead, dead[0].communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the processes did not start in time"
        time.sleep(0.01)
