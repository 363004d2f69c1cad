"""User errors that once ended in a traceback end in one line: a model too big for memory
(checked on the meta device before anything is allocated) and a config file that is not
UTF-8 text. (Checkpoint hyper-parameters of the wrong type or size: test_checkpoint_security.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from reclight import cli

pytestmark = pytest.mark.usefixtures("toy_registry")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return int(exit_info.value.code or 0), [l for l in err.splitlines() if "error:" in l], err


def test_a_huge_dim_is_refused_before_allocating_saying_how_much(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, errors, err = run(["fit", "--model", "toy-mf", "--model.dim", "100000000000",
                             "--data.synthetic_ratings", "1000", "--trainer.logger", "false",
                             "--trainer.default_root_dir", str(tmp_path)],
                            capsys)
    assert code == 2 and len(errors) == 1, err
    assert "model 'toy-mf' with these hyper-parameters needs" in errors[0]
    assert "TiB" in errors[0] and "available" in errors[0] and "--model.dim" in errors[0]


def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "latin1.yaml"
    config.write_bytes("model:\n  dim: 8\n# café\n".encode("latin-1"))
    code, errors, err = run(["fit", "--model", "toy-mf", "--config", str(config),
                             "--trainer.default_root_dir", str(tmp_path)], capsys)
    assert code == 2 and len(errors) == 1, err
    assert f"'{config}' is not UTF-8 text (byte 0xe9" in errors[0] and "save it as UTF-8" in errors[0]
