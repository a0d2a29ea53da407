"""The platform/ source root shadows nothing: `import platform` stays the standard library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_import_platform_from_repo_root_is_the_stdlib() -> None:
    code = (
        "import json, platform, genbench, genbench.families; "
        "print(json.dumps([getattr(platform, '__file__', None), platform.system(), genbench.__file__]))"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    platform_file, system, genbench_file = json.loads(out.stdout)
    assert platform_file is not None, "platform resolved to a namespace package"
    assert not Path(platform_file).resolve().is_relative_to(REPO / "platform")
    assert system
    assert Path(genbench_file).resolve().is_relative_to(REPO / "platform" / "genbench")


def test_source_root_is_not_a_package() -> None:
    assert (REPO / "platform" / "genbench" / "__init__.py").is_file()
    assert not (REPO / "platform" / "__init__.py").exists()
