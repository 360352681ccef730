"""Every `snakemake` command of README.md's code blocks and of the Makefile works as written.

`--configfile` takes every word after it up to the next option (nargs="+"), so a target written after
it is read as a config file (issue #22: `... --configfile configs/smoke.yaml results/smoke/dataset/train.json`
failed with `unknown key annotations`, `... --configfile configs/default.yaml weights` with
`FileNotFoundError: 'weights'`). Two checks per command:

- statically, every word `--configfile` takes must be a config file in configs/ (fast, not slow-marked;
  inline `snakemake ...` spans of the README prose are checked too);
- the command is dry-run (`-n`) as written, from a folder laid out like the repo root, with the config
  it names replaced by configs/smoke.yaml (or that config added when it names none), so that the run
  folder results/<name>/ is results/smoke/ and the dry run is quick. Only the first config word is
  replaced: a swallowed target stays where it was and fails the dry run too.

The ids of the dry-run tests are the README line numbers (and Makefile targets) they ran; each test
prints the exact command. `--profile profiles/slurm` lines need no SLURM for a dry run (the executor
plugin is imported and configured, nothing is submitted), so they run like the others. Shell pipes
after the command (`| grep ...`) run too, under `pipefail`.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
SMOKE = "configs/smoke.yaml"
CONFIG_OPTIONS = ("--configfile", "--configfiles")
# control operators that end the snakemake command on a line (what follows runs in the shell as written)
OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"}
# the repo root as a user sees it, without results/ or .snakemake/ of any local run
LINKED = ("Snakefile", "workflow", "configs", "pipeline", "blender", "profiles", "scripts", "examples")


def tokenize(text: str) -> list[str]:
    """Shell words, `#` comments dropped, control operators (`|`, `&&`, ...) as their own words."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    return list(lex)


def readme_code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, logical line) of every line in a fenced code block; `\\` continuations joined."""
    out, in_block, pending, start = [], False, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(r"\s*```", line):
            in_block, pending = not in_block, ""
            continue
        if not in_block:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    return out


def readme_snakemake_lines() -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in readme_code_lines(README.read_text())
            if re.match(r"snakemake(\s|$)", line.strip())]


def readme_inline_snakemake() -> list[tuple[int, str]]:
    """`snakemake ...` spans in the prose (placeholders like `...` allowed there)."""
    out, in_block = [], False
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if re.match(r"\s*```", line):
            in_block = not in_block
        elif not in_block:
            out += [(number, span) for span in re.findall(r"`(snakemake\s[^`]*)`", line)]
    return out


def makefile_snakemake_lines() -> list[tuple[str, str]]:
    """What `make -n` would run for each target that calls Snakemake (nothing is executed)."""
    if not shutil.which("make"):
        return []
    runs = [("demo", []), ("run", []), ("proof", []), ("lint", []),
            ("demo TARGETS=results/smoke/dataset/train.json", ["TARGETS=results/smoke/dataset/train.json"])]
    out = []
    for name, extra in runs:
        res = subprocess.run(["make", "-n", "-C", str(REPO), name.split()[0], *extra],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        out += [(f"make {name}", line.strip()) for line in res.stdout.splitlines()
                if re.match(r"\S*snakemake(\s|$)", line.strip())]
    return out


README_LINES = readme_snakemake_lines()
MAKE_LINES = makefile_snakemake_lines()


def split_command(line: str) -> tuple[list[str], list[str]]:
    """(the snakemake words, the rest of the shell line from its first control operator on)."""
    words = tokenize(line)
    cut = next((i for i, w in enumerate(words) if w in OPERATORS), len(words))
    return words[:cut], words[cut:]


def config_groups(words: list[str]) -> list[tuple[int, list[str]]]:
    """(index of the option, the words it takes) for each --configfile in `words`."""
    groups = []
    for i, word in enumerate(words):
        opt, eq, value = word.partition("=")
        if opt not in CONFIG_OPTIONS:
            continue
        if eq:
            groups.append((i, [value]))
            continue
        taken = []
        for later in words[i + 1:]:
            if later.startswith("-"):
                break
            taken.append(later)
        groups.append((i, taken))
    return groups


def swallowed(words: list[str], placeholder_ok: bool = False) -> list[str]:
    """Words --configfile takes that are not config files in configs/ (targets it would swallow)."""
    bad = []
    for _, taken in config_groups(words):
        if not taken:
            bad.append("(nothing after --configfile)")
        for k, word in enumerate(taken):
            if placeholder_ok and k == 0 and word == "...":
                continue
            if not (word.startswith("configs/") and (REPO / word).is_file()):
                bad.append(word)
    return bad


def test_readme_and_makefile_commands_are_found():
    # the parser must not go blind: the README's code blocks hold these commands (and more)
    assert len(README_LINES) >= 10, README_LINES
    texts = [line for _, line in README_LINES]
    assert any(" -R evaluate" in t for t in texts) and any("--profile profiles/slurm" in t for t in texts)
    assert any(re.search(r"configs/cluster_test.yaml\s+--slurm-no-account", t) for t in texts)  # `\` lines joined
    assert {name.split()[1] for name, _ in MAKE_LINES} >= {"demo", "run", "proof", "lint"}, MAKE_LINES


@pytest.mark.parametrize("where, line", [*[(f"README.md:{n}", t) for n, t in README_LINES],
                                         *[(f"README.md:{n} (inline)", t) for n, t in readme_inline_snakemake()],
                                         *MAKE_LINES])
def test_configfile_takes_only_config_files(where, line):
    words, _ = split_command(line)
    bad = swallowed(words, placeholder_ok="inline" in where)
    assert not bad, (f"{where}: {line}\n--configfile reads every word up to the next option as a config file, "
                     f"so {bad} would be read as config file(s): put targets before --configfile")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("repo_root")
    for name in LINKED:
        (folder / name).symlink_to(REPO / name)
    return folder


def dry_run_command(line: str) -> str:
    """The line as a bash command: snakemake from this interpreter, the smoke config, `-n` added."""
    words, rest = split_command(line)
    assert words and Path(words[0]).name == "snakemake", line
    groups = config_groups(words)
    named = groups[0][1][0] if groups and groups[0][1] else "configs/default.yaml"  # the Snakefile's default
    name = yaml.safe_load((REPO / named).read_text())["name"] if (REPO / named).is_file() else "default"
    args = list(words[1:])
    if groups:
        for index, taken in reversed(groups):
            pos = index - 1  # in args
            if "=" in args[pos]:
                args[pos] = f"{CONFIG_OPTIONS[0]}={SMOKE}"
            elif taken:
                args[pos + 1] = SMOKE  # only the first word: anything swallowed after it stays and fails
    else:
        args += ["--configfile", SMOKE]
    # targets under the named config's run folder live under the smoke config's
    args = [re.sub(rf"^results/{re.escape(name)}/", "results/smoke/", a) for a in args]
    cmd = shlex.join([sys.executable, "-m", "snakemake", *args, "-n"])
    return " ".join([cmd, *(w if w in OPERATORS else shlex.quote(w) for w in rest)])


def dry_run(root: Path, where: str, line: str) -> None:
    command = dry_run_command(line)
    print(f"{where}: {line}\n  ran: {command}")
    res = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=root, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, (f"{where}: {line}\nran: {command}\n"
                                 + res.stdout[-2000:] + res.stderr[-4000:])


@pytest.mark.slow
@pytest.mark.parametrize("where, line", [(f"README.md:{n}", t) for n, t in README_LINES])
def test_readme_snakemake_line_dry_runs(root, where, line):
    dry_run(root, where, line)


@pytest.mark.slow
@pytest.mark.parametrize("where, line", MAKE_LINES)
def test_makefile_snakemake_recipe_dry_runs(root, where, line):
    dry_run(root, where, line)
