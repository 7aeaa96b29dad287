"""The committed stubs in gen/python are exactly what scripts/genproto.sh makes from protos/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from services.common.config import repo_root


def test_generated_stubs_match_the_protos(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "scripts" / "genproto.sh").write_bytes((repo_root() / "scripts" / "genproto.sh").read_bytes())
    shutil.copytree(repo_root() / "protos", checkout / "protos")
    result = subprocess.run(
        ["bash", "scripts/genproto.sh"], cwd=checkout, env={**os.environ, "PYTHON": sys.executable},
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    committed = repo_root() / "gen" / "python"
    fresh = checkout / "gen" / "python"
    files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    stale = [str(f) for f in files if (fresh / f).read_bytes() != (committed / f).read_bytes()]
    assert not stale, f"regenerate with `make protos`: {stale}"
