"""Atomic writes (pipeline/io.py): the files they leave have the permissions a plain open() gives."""
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.io import atomic_path, remove_stale_temps, write_json

REPO = Path(__file__).resolve().parent.parent

# Runs in a child process that sets its own umask, so this test process's umask (and any thread of it
# creating files meanwhile) is never touched. Writes through every kind of writer atomic_path serves:
# write_json, a text writer, torch.save (checkpoints), PIL (PNG sheets and overlays).
CHILD = r"""
import json, os, sys
from pathlib import Path
os.umask(int(sys.argv[1], 8))
out = Path(sys.argv[2])
from pipeline.io import atomic_path, write_json
write_json(out / "a.json", {"x": 1})
with atomic_path(out / "sub" / "b.txt") as tmp:
    tmp.write_text("b")
import numpy as np
from PIL import Image
with atomic_path(out / "c.png") as tmp:
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp, format="PNG")
if sys.argv[3] == "torch":
    from pipeline.model import save_checkpoint
    save_checkpoint(out / "d.pth", iteration=1)
with open(out / "plain.txt", "w") as f:  # what the others must match
    f.write("plain")
"""


def write_under_umask(folder: Path, umask: int, torch: bool = False) -> dict[str, int]:
    folder.mkdir()
    res = subprocess.run([sys.executable, "-c", CHILD, oct(umask), str(folder), "torch" if torch else "-"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)],
                         ids=["umask022", "umask002", "umask077"])
def test_atomic_writes_get_the_mode_open_gives_under_the_umask(tmp_path, umask, mode):
    modes = write_under_umask(tmp_path / "out", umask, torch=umask == 0o002)
    expected = {"a.json", "sub/b.txt", "c.png", "plain.txt"} | ({"d.pth"} if umask == 0o002 else set())
    assert set(modes) == expected, modes  # no temp file left behind either
    assert modes == {name: mode for name in expected}, {k: oct(v) for k, v in modes.items()}


def test_atomic_path_replaces_the_file_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "x.json"
    write_json(target, {"a": 1})
    write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".x.json.") and tmp.suffix == ".json"
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_temp_names_are_unique_and_stale_ones_removable(tmp_path):
    with atomic_path(tmp_path / "y.png") as a, atomic_path(tmp_path / "y.png") as b:
        assert a != b and a.is_file() and b.is_file()
        a.write_bytes(b"a")
        b.write_bytes(b"b")
    assert (tmp_path / "y.png").read_bytes() == b"a"  # the later rename wins; nothing left over
    assert [p.name for p in tmp_path.iterdir()] == ["y.png"]
    (tmp_path / ".y.png.dead.png").write_bytes(b"killed")
    assert remove_stale_temps(tmp_path) == 1 and [p.name for p in tmp_path.iterdir()] == ["y.png"]

