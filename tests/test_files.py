"""Files reclight writes: atomic, and never over a user's file without --overwrite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reclight.errors import ConfigError
from reclight.files import atomic_open, write_atomic

from .test_cli import SMALL, assert_one_line_error, run

pytestmark = pytest.mark.usefixtures("toy_registry")


def test_write_atomic_replaces_whole_files_and_refuses_unasked(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    write_atomic(path, "one\n")
    with pytest.raises(ConfigError, match="already exists; pass --overwrite"):
        write_atomic(path, "two\n", overwrite=False)
    write_atomic(path, b"three\n")
    assert path.read_text() == "three\n"
    with pytest.raises(RuntimeError), atomic_open(path) as handle:  # a crash mid-write
        handle.write("torn")
        raise RuntimeError("killed")
    assert path.read_text() == "three\n" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with pytest.raises(ConfigError, match="is a folder"):
        write_atomic(tmp_path, "x")


def test_a_rerun_without_a_logger_keeps_the_earlier_record(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    args = ["fit", "--model", "toy", "--trainer.default_root_dir", str(tmp_path), *SMALL,
            "--trainer.logger", "false", "--trainer.max_epochs", "1"]
    code, _, err = run(args, capsys)
    assert code == 0, err
    before = {name: (tmp_path / name).read_text() for name in ("config.yaml", "metrics.json")}
    code, _, err = run([*args, "--seed_everything", "3"], capsys)
    assert_one_line_error(code, err, "earlier run", "--overwrite")
    assert before == {name: (tmp_path / name).read_text() for name in before}
    code, _, err = run([*args, "--seed_everything", "3", "--overwrite"], capsys)
    assert code == 0, err
    assert "seed_everything: 3" in (tmp_path / "config.yaml").read_text()
    assert json.loads((tmp_path / "metrics.json").read_text())["model"] == "toy"


def test_overwrite_onto_a_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["recommend", "--ckpt", str(tmp_path / "x.ckpt"), "--users", "1",
                        "--output", str(tmp_path), "--overwrite"], capsys)
    assert_one_line_error(code, err, "is a folder")
