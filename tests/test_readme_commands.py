"""Every command of the README's "Using it" block runs, in order, on small data.

The block is read from README.md when the test runs, so a README that drifts from the code is
a failing test. Each command runs in-process through the `reclight` entry point in a fresh
folder, with flags appended that keep it small (one epoch, 3,000 synthetic ratings); later
flags override earlier ones, so the README's own flags are still parsed and used. Placeholders
the README names (``CKPT``, ``ratings.csv``, ``pairs.csv``) are the checkpoint of the latest
fit and small files written beforehand. Paths are the README's, relative to the repository
root (``../shared/data/ml-100k``, ``./examples/...``), which the test folder mirrors with links.
``reclight install``/``uninstall`` run through the command too, but the pip they call is
replaced by a check that the paths they name exist: the test must not change the environment
(``tests/test_examples.py`` installs the example plugin for real).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from reclight import cli
from reclight.testing import low_rank_ratings

REPO = Path(__file__).resolve().parents[1]
SMALL = {"fit": ["--trainer.max_epochs", "1", "--data.synthetic_ratings", "3000"],
         "compare": ["--trainer.max_epochs", "1", "--data.synthetic_ratings", "3000"]}


def readme_commands(readme: Path = REPO / "README.md") -> list[list[str]]:
    """The reclight commands of the first bash block under "## Using it", as argument lists."""
    text = readme.read_text(encoding="utf-8")
    section = text.split("## Using it", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README.md has no bash block under '## Using it'"
    commands = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words and Path(words[0]).name == "reclight":
            commands.append(words[1:])
    return commands


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(args)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_readme_block_is_found_and_names_the_main_commands() -> None:
    commands = readme_commands()
    assert {c[0] for c in commands} >= {"fit", "test", "predict", "recommend"}


def test_every_readme_command_runs_in_order(ml100k_dir: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    # The README's relative MovieLens path (../shared/data/ml-100k) and built-in name both
    # find the shared copy; it is linked, never copied.
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "ml-100k").symlink_to(ml100k_dir)
    for name in ("examples", "plugins"):
        (work / name).symlink_to(REPO / name)
    monkeypatch.setenv("RECLIGHT_DATA", str(ml100k_dir.parent))
    monkeypatch.chdir(work)
    pip_calls: list[list[str]] = []

    def fake_pip(command: list[str]) -> int:
        for arg in command[4:]:
            if arg.startswith((".", "/")):
                assert Path(arg).exists(), f"the README's `{shlex.join(command[3:])}` names {arg}"
        pip_calls.append(command[3:])
        return 0

    monkeypatch.setattr("reclight.install._run", fake_pip)
    frame = low_rank_ratings(60, 40)
    frame["timestamp"] = range(len(frame))
    frame.to_csv(work / "ratings.csv", index=False)
    (work / "pairs.csv").write_text("user,item\n1,1\n2,3\n")
    checkpoint = None
    for args in readme_commands():
        args = [checkpoint if a == "CKPT" and checkpoint else a for a in args]
        args += SMALL.get(args[0], [])
        code, out, err = _run(args, capsys)
        assert code == 0, f"`reclight {shlex.join(args)}` failed:\n{err}"
        assert "Traceback" not in err
        for line in out.splitlines():
            if line.startswith("checkpoint: "):
                checkpoint = line.split(": ", 1)[1]
        if args[0] in ("fit", "test"):
            assert checkpoint and Path(checkpoint).is_file(), out
    assert len(pip_calls) == sum(c[0] in ("install", "uninstall") for c in readme_commands())
