"""Atomic file writes and provenance: nothing half-written ever looks finished."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator


def remove_stale_temps(folder: str | os.PathLike) -> int:
    """Delete temp files that atomic_path left in `folder` when a process was killed mid-write."""
    folder = Path(folder)
    stale = [p for p in folder.glob(".*") if p.is_file()] if folder.is_dir() else []
    for p in stale:
        p.unlink()
    return len(stale)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path in the destination folder; rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp",
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> None:
    """Write JSON atomically with sorted keys (byte-stable for identical content)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read JSON, naming the file in the error if it is not valid."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def git_sha(cwd: str | os.PathLike | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).parent,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(config: Any = None) -> dict[str, Any]:
    """Resolved config, git SHA and package versions, to store beside every product."""
    pkgs = {}
    for name in ("bpy", "torch", "torchvision", "pycocotools", "numpy", "snakemake", "OpenEXR"):
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"config": config, "git_sha": git_sha(), "python": sys.version.split()[0],
            "platform": platform.platform(), "packages": pkgs}
