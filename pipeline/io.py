"""Atomic file writes and provenance: nothing half-written ever looks finished."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
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


# O_EXCL: never reuse a name another writer holds; O_NOFOLLOW/O_CLOEXEC as tempfile.mkstemp does.
_TEMP_FLAGS = (os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_BINARY", 0))


def _create_temp(folder: Path, prefix: str, suffix: str) -> Path:
    """Create an empty, uniquely named file in `folder` with the mode a plain open() gives it.

    tempfile.mkstemp creates its file 0600 whatever the umask, and the rename kept that mode: every
    output was unreadable for the group (issue #22). Here the kernel applies the process's umask (or
    the folder's default ACL) to mode 0666 at creation, exactly as for open(path, "w"). That needs no
    reading of the umask: os.umask can only be read by setting it, which races with other threads
    creating files (and /proc/self/status is Linux-only and ignores default ACLs)."""
    for _ in range(tempfile.TMP_MAX):
        tmp = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(tmp, _TEMP_FLAGS, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"{folder}: no free temporary name with prefix {prefix!r}")


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path in the destination folder; rename it onto `path` only on success.

    The temp file (so the result) gets the permissions a plain open() would give: 0666 & ~umask.
    Writers that truncate it keep that mode, writers that replace it create it with the same."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temp(path.parent, f".{path.name}.", suffix or path.suffix or ".tmp")
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def file_sha256(path: str | os.PathLike) -> str:
    """Content hash of one file, read in 1 MiB blocks (checkpoints and assets can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def files_sha256(paths: list[Path]) -> str:
    """One hash over the names and contents of `paths` (a code version: any edit changes it)."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


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
    for name in ("bpy", "torch", "torchvision", "pycocotools", "numpy", "snakemake", "OpenEXR", "onnx", "onnxruntime"):
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"config": config, "git_sha": git_sha(), "python": sys.version.split()[0],
            "platform": platform.platform(), "packages": pkgs}
