"""Input fuzzing: random malformed ratings files, pairs files and checkpoints.

Property (hypothesis): every case ends in a loaded data set (whose invariants hold: ids
non-empty, stripped and free of NUL, ratings finite float32, timestamps int64) or in reclight's
one-line error (:class:`reclight.errors.RecLightError` from the library; exit status 2 and one
``reclight: error:`` line from the command), never another exception, a numpy overflow
warning, a traceback or a hang. Files go through the readers and the DataModule; pairs and
checkpoints through ``reclight predict``/``test``, in-process via :func:`reclight.cli.main`.

Default run: the ``reclight-fuzz`` settings profile (derandomised, so CI is repeatable, and
about 35 s on the shared 2-core box). ``pytest -m slow tests/test_fuzz_inputs.py -s`` runs the ``reclight-fuzz-slow``
profile (random seeds, many more cases) and prints the tally that benchmarks/RESULTS.md quotes.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import os
import signal
import sys
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

try:  # in the test extra; a venv made before it was added skips, CI fails loudly
    import hypothesis  # noqa: F401
except ImportError:
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("hypothesis is not installed: pip install -e '.[test]'", allow_module_level=True)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reclight import cli  # noqa: E402
from reclight.data import RatingDataModule  # noqa: E402
from reclight.data.readers import read_pairs, read_ratings  # noqa: E402
from reclight.data.schema import ID_SPACE  # noqa: E402
from reclight.errors import DataWarning, RecLightError  # noqa: E402

COMMON = dict(deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture,
                                     HealthCheck.filter_too_much])
settings.register_profile("reclight-fuzz", derandomize=True, **COMMON)
settings.register_profile("reclight-fuzz-slow", derandomize=False, **COMMON)
FAST = settings.get_profile("reclight-fuzz")
SLOW = settings.get_profile("reclight-fuzz-slow")
HANG_S = 30  # one case longer than this is a hang

TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report_tally() -> Iterator[None]:
    """Print how many cases ran and how each ended (``-s`` shows it)."""
    yield
    if TALLY:
        kinds = sorted({key.split(":")[0] for key in TALLY})
        parts = [f"{kind} {sum(v for k, v in TALLY.items() if k.startswith(kind + ':'))} "
                 f"(loaded {TALLY[kind + ':ok']}, one-line errors {TALLY[kind + ':error']})"
                 for kind in kinds]
        print(f"\nfuzz: {sum(TALLY.values())} cases, 0 escaped: " + "; ".join(parts),
              file=sys.__stdout__)


@contextlib.contextmanager
def no_hang(seconds: int = HANG_S) -> Iterator[None]:
    def alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"a fuzz case ran over {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---- strategies ------------------------------------------------------------------------------
ID_SAMPLES = ["1", "1.0", " 1 ", "", " ", "007", "\x00", "a\x00", "ß", "用户", "\ufeff1", '"',
              '"1"', "nan", "NULL", "-0", "1e5", "\t2", "🙂", "\x1f", "::"]
# Subnormal floats are written out here, not drawn: hypothesis cannot draw them once a
# process has set flush-to-zero (torch.set_flush_denormal, which a fit turns on).
FLOATS = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False)
FRACTION = st.floats(0, 1, allow_subnormal=False)
RATING_SAMPLES = ["5e-324", "1e-310", "1e39", "-1e39", "1e308", "-1e308", "3.5e38", "-5", "nan", "NaN", "inf",
                  "-inf", "", "3.5", "x", "1e-50", "0x10", "4,5", "1_000", "5 ", " 5"]
TS_SAMPLES = ["1e39", "1e308", "2020-01-01", "2020-13-45", "", "yesterday", "881250949",
              "-1", "9223372036854775808", "1.5"]

hostile_ids = st.one_of(st.sampled_from(ID_SAMPLES), st.integers(-2**70, 2**70).map(str),
                        st.text(max_size=6))
hostile_ratings = st.one_of(st.sampled_from(RATING_SAMPLES),
                            FLOATS.map(repr))
hostile_stamps = st.one_of(st.sampled_from(TS_SAMPLES), st.integers(-2**70, 2**70).map(str))
ids = st.integers(1, 30).map(str)
ratings = st.sampled_from(["1", "2", "3", "4", "5", "0.5", "3.5", "-2", "10"])
stamps = st.integers(800_000_000, 900_000_000).map(str)
CELLS = [(ids, hostile_ids), (ids, hostile_ids), (ratings, hostile_ratings),
         (stamps, hostile_stamps), (ids, hostile_ids)]
SEPS = [",", "\t", "::", ";", "|", " ", "  ", ":", "||", ", "]
HEADERS = ["userId,movieId,rating,timestamp", "user,item,rating", "user,item", "u,i,r",
           "user_id\titem_id\tstars", "a,b,c,d,e", "rating,user", "userId,movieId,timestamp", ""]
NAMES = ["ratings.csv", "u.data", "r.tsv", "ratings.dat", "u1.base", "x.txt", "r.csv.gz",
         "r.parquet", "noext"]


@st.composite
def table_text(draw: st.DrawFn, min_cols: int = 1, max_cols: int = 5,
               fields: tuple[st.SearchStrategy[str], st.SearchStrategy[str]] | None = None
               ) -> str:
    """Delimited lines: random separator, header, truncated/extended rows, mixed endings."""
    sep = draw(st.one_of(*[st.sampled_from(SEPS)] * 5, st.characters(codec="utf-8")))
    ncols = draw(st.sampled_from([c for c in (3, 4, 2, 3, 5, 1, 4, 3) if min_cols <= c <= max_cols]))
    # How hostile this file is: clean, a few bad cells, or bad throughout.
    hostility = draw(st.sampled_from([0.0, 0.03, 0.0, 0.2, 1.0]))
    lines = []
    header = draw(st.one_of(st.none(), st.sampled_from(HEADERS),
                            st.lists(st.text(max_size=5), min_size=1, max_size=5)
                            .map(",".join)))
    if header is not None:
        lines.append(header if draw(st.booleans()) else header.replace(",", sep))
    widths = [ncols] * (40 if hostility == 0 else 6) + [max(1, ncols - 1), ncols + 1]
    for _ in range(draw(st.integers(4, 30) | st.sampled_from([0, 1, 2, 3]))):
        width = draw(st.sampled_from(widths))
        row = []
        for c in range(width):
            clean, bad = fields if fields is not None else CELLS[min(c, 4)]
            bad_cell = hostility > 0 and draw(FRACTION) < hostility
            row.append(draw(bad if bad_cell else clean))
        lines.append(sep.join(row))
    endings = st.sampled_from(["\n", "\n", "\r\n", "\r", "\n\n"])
    text = "".join(line + draw(endings) for line in lines)
    if text and hostility > 0 and draw(st.integers(0, 3)) == 3:  # a file cut short
        text = text[:draw(st.integers(0, len(text)))]
    return text


@st.composite
def file_bytes(draw: st.DrawFn, text: st.SearchStrategy[str]) -> bytes:
    """A text encoded (UTF-8, with a BOM, UTF-16, Latin-1) and maybe compressed or broken,
    or plain random bytes."""
    # Hypothesis starts from the simplest draw of each choice: the first choice of each is
    # the well-formed one, so that the search grows hostile from files that load.
    if draw(st.integers(0, 9)) == 9:
        return draw(st.binary(max_size=600))
    body = draw(text)
    encoding = draw(st.sampled_from(["utf-8"] * 4 + ["utf-8-sig", "utf-16", "latin-1"]))
    data = body.encode(encoding, errors="replace")
    wrap = draw(st.sampled_from(["none"] * 12 + ["gzip", "bz2", "zip", "broken-gzip"]))
    if wrap == "gzip":
        data = gzip.compress(data)
    elif wrap == "bz2":
        data = bz2.compress(data)
    elif wrap == "broken-gzip":
        data = gzip.compress(data)[:max(2, len(data) // 2)]
    elif wrap == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("ratings.csv", data)
        data = buffer.getvalue()
    return data


@st.composite
def near_valid(draw: st.DrawFn) -> bytes:
    """A well-formed ratings file with at most a few hostile cells (unicode, huge or negative
    ids, NaN/inf/overflowing ratings, NUL), mixed line endings and maybe a BOM: the cases
    that load, so that what loads is checked too."""
    sep = draw(st.sampled_from([",", "\t", "::", ";", "|"]))
    ncols = draw(st.sampled_from([3, 4]))
    hostility = draw(st.sampled_from([0.0, 0.01, 0.04]))
    header = draw(st.sampled_from([None, "userId,movieId,rating,timestamp", "user,item,rating"]))
    lines = [] if header is None else [header.replace(",", sep)]
    for _ in range(draw(st.integers(5, 40))):
        row = []
        for c in range(ncols):
            clean, bad = CELLS[c]
            bad_cell = hostility > 0 and draw(FRACTION) < hostility
            row.append(draw(bad if bad_cell else clean))
        lines.append(sep.join(row))
    endings = st.sampled_from(["\n", "\r\n", "\r", "\n\n"])
    text = "".join(line + draw(endings) for line in lines)
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])))


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _check_table(frame: object) -> None:
    """The invariants of the standard table: what "a loaded data set" promises."""
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    for role in ("user", "item"):
        col = frame[role]
        assert col.dtype == "str" and not col.isna().any()
        assert not (col == "").any() and not col.str.contains("\x00", regex=False).any()
        assert (col == col.str.strip(ID_SPACE)).all()
    if "rating" in frame:
        assert frame["rating"].dtype == np.float32 and np.isfinite(frame["rating"]).all()
    if "timestamp" in frame:
        assert frame["timestamp"].dtype == np.int64


def _strict() -> contextlib.AbstractContextManager[object]:
    """numpy's overflow/invalid-cast warnings (infinity trained on, wrapped integers) fail."""
    caught = warnings.catch_warnings()
    caught.__enter__()
    warnings.simplefilter("error", RuntimeWarning)
    warnings.simplefilter("ignore", DataWarning)  # a documented, counted warning
    return caught


# ---- ratings files through the readers and the DataModule --------------------------------
def _ratings_case(folder: Path, name: str, data: bytes, sep: str | None, columns: str | None,
                  split: str) -> None:
    path = _write(folder, name, data)
    caught = _strict()
    try:
        with no_hang():
            try:
                frame = read_ratings(path, columns=columns, sep=sep)
            except RecLightError as exc:
                assert str(exc) and "\n" not in str(exc), repr(exc)
                TALLY["ratings:error"] += 1
                return
            _check_table(frame)
            try:
                module = RatingDataModule(source=str(path), split=split, columns=columns, sep=sep,
                                          test_size=0.2)
            except RecLightError as exc:
                assert str(exc) and "\n" not in str(exc), repr(exc)
                TALLY["ratings:error"] += 1
                return
            assert module.num_users >= 1 and module.num_items >= 1
            assert np.isfinite(module.global_mean)
            TALLY["ratings:ok"] += 1
    finally:
        caught.__exit__(None, None, None)


ratings_cases = dict(
    name=st.sampled_from(["ratings.csv"] * 6 + NAMES),
    data=file_bytes(table_text()),
    sep=st.one_of(*[st.none()] * 4, st.sampled_from([",", "\\t", "::", "space", ";"])),
    columns=st.one_of(*[st.none()] * 4, st.sampled_from(["user=0,item=1,rating=2", "user=1,item=0",
                                                  "user=userId,item=movieId,rating=rating",
                                                  "user=0,item=1,rating=2,timestamp=3"])),
    split=st.sampled_from(["none", "random", "leave_k_out"]),
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(FAST, max_examples=130)
@given(**ratings_cases)
def test_fuzzed_ratings_files_load_or_fail_in_one_line(folder: Path, name: str, data: bytes,
                                                       sep: str | None, columns: str | None,
                                                       split: str) -> None:
    _ratings_case(folder, name, data, sep, columns, split)


@settings(FAST, max_examples=100)
@given(data=near_valid(), split=st.sampled_from(["none", "random", "leave_k_out"]))
def test_fuzzed_near_valid_ratings_load_or_fail_in_one_line(folder: Path, data: bytes,
                                                            split: str) -> None:
    _ratings_case(folder, "ratings.csv", data, None, None, split)


@pytest.mark.slow
@settings(SLOW, max_examples=1000)
@given(data=near_valid(), split=st.sampled_from(["none", "random", "leave_k_out"]))
def test_fuzzed_near_valid_ratings_many(folder: Path, data: bytes, split: str) -> None:
    _ratings_case(folder, "ratings.csv", data, None, None, split)


@pytest.mark.slow
@settings(SLOW, max_examples=2000)
@given(**ratings_cases)
def test_fuzzed_ratings_files_many(folder: Path, name: str, data: bytes, sep: str | None,
                                   columns: str | None, split: str) -> None:
    _ratings_case(folder, name, data, sep, columns, split)


# ---- pairs files and checkpoints through `reclight predict` / `reclight test` --------------
def _cli(args: list[str]) -> tuple[int, str]:
    """Run the command in-process; its exit status and what it printed on stderr."""
    err, out = io.StringIO(), io.StringIO()
    code: object = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            cli.main(args)
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), err.getvalue()


def _assert_clean_exit(code: int, err: str) -> str:
    assert "Traceback" not in err, err
    if code == 0:
        return "ok"
    errors = [line for line in err.splitlines() if line.startswith("reclight: error:")]
    assert code == 2 and len(errors) == 1, (code, err)
    return "error"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A toy model fitted on small synthetic data (raw ids 1..n), with the toy plugin loaded
    for the whole module."""
    from reclight.plugins import PluginSet, reset_plugins

    from . import toy_plugin

    plugin_set = PluginSet()
    plugin_set.load_entry_points()
    plugin_set.add(toy_plugin, "toy", "reclight-toy-tests", "0.0")
    reset_plugins(plugin_set)
    root = tmp_path_factory.mktemp("fuzz-ckpt")
    code, err = _cli(["fit", "--model", "toy", "--data.synthetic_ratings", "2000",
                      "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
                      "--trainer.default_root_dir", str(root / "run")])
    assert code == 0, err
    ckpt = json.loads(next((root / "run").rglob("metrics.json")).read_text())["checkpoint"]
    pairs = root / "good_pairs.csv"
    pairs.write_text("user,item\n1,1\n2,3\n99999,1\n")
    try:
        yield {"ckpt": ckpt, "root": root, "pairs": pairs,
               "dict": torch.load(ckpt, map_location="cpu", weights_only=True)}
    finally:
        reset_plugins(None)


PAIR_FIELDS = (ids, hostile_ids)


def _pairs_case(trained: dict[str, object], data: bytes) -> None:
    root = trained["root"]
    assert isinstance(root, Path)
    path = _write(root, "pairs.csv", data)
    caught = _strict()
    try:
        with no_hang():
            try:  # the reader alone: loaded pairs keep the id invariants
                pairs = read_pairs(path)
                for role in ("user", "item"):
                    assert not (pairs[role] == "").any()
                    assert (pairs[role] == pairs[role].str.strip(ID_SPACE)).all()
            except RecLightError as exc:
                assert "\n" not in str(exc)
            code, err = _cli(["predict", "--ckpt", str(trained["ckpt"]), "--input", str(path),
                              "--output", str(root / "preds.csv"), "--overwrite"])
            TALLY[f"pairs:{_assert_clean_exit(code, err)}"] += 1
    finally:
        caught.__exit__(None, None, None)


pairs_files = file_bytes(table_text(min_cols=1, max_cols=4, fields=PAIR_FIELDS))


@settings(FAST, max_examples=70)
@given(data=pairs_files)
def test_fuzzed_pairs_files_predict_or_fail_in_one_line(trained: dict[str, object],
                                                        data: bytes) -> None:
    _pairs_case(trained, data)


@pytest.mark.slow
@settings(SLOW, max_examples=1000)
@given(data=pairs_files)
def test_fuzzed_pairs_files_many(trained: dict[str, object], data: bytes) -> None:
    _pairs_case(trained, data)


ANY_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**65, 2**65), st.floats(allow_subnormal=False),
              st.text(max_size=8), st.just(10**12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6)


@st.composite
def broken_checkpoints(draw: st.DrawFn, original: bytes, state: dict) -> bytes:
    """A real checkpoint's bytes cut, flipped or replaced, or its dict with random parts
    replaced by random values (hyper-parameters, id maps, tensors, whole sections)."""
    how = draw(st.sampled_from(["bytes", "cut", "flip", "dict", "dict", "dict", "dict"]))
    if how == "bytes":
        return draw(st.binary(max_size=400))
    if how == "cut":
        return original[:draw(st.integers(0, len(original) - 1))]
    if how == "flip":
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        return bytes(data)
    ckpt = _copy(state)
    for _ in range(draw(st.integers(1, 3))):
        path = _random_path(draw, ckpt)
        if not path:
            continue
        parent = _get(ckpt, path[:-1])
        key = path[-1]
        action = draw(st.sampled_from(["value", "value", "drop", "tensor"]))
        if action == "drop" and isinstance(parent, dict):
            parent.pop(key, None)
        elif action == "tensor":
            shape = draw(st.lists(st.integers(0, 5), max_size=3))
            value = torch.full(shape, draw(st.sampled_from([0.0, float("nan"), float("inf"),
                                                            1e30, -1.0])))
            _set(parent, key, value)
        else:
            _set(parent, key, draw(ANY_VALUE))
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    return buffer.getvalue()


def _copy(value: object) -> object:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value.clone() if isinstance(value, torch.Tensor) else value


def _random_path(draw: st.DrawFn, root: object) -> list[object]:
    """A path of keys from the checkpoint's root to one of its values, down a random depth."""
    path: list[object] = []
    node = root
    while isinstance(node, dict | list) and len(node):
        keys = list(node.keys()) if isinstance(node, dict) else list(range(min(len(node), 5)))
        key = draw(st.sampled_from(keys))
        path.append(key)
        node = node[key]
        if draw(st.integers(0, 3)) == 0:
            break
    return path


def _get(root: object, path: list[object]) -> object:
    for key in path:
        root = root[key]  # type: ignore[index]
    return root


def _set(parent: object, key: object, value: object) -> None:
    if isinstance(parent, dict) or (isinstance(parent, list) and isinstance(key, int)):
        parent[key] = value  # type: ignore[index]


def _ckpt_case(trained: dict[str, object], data: bytes, command: str) -> None:
    root = trained["root"]
    assert isinstance(root, Path)
    path = _write(root, "broken.ckpt", data)
    if command == "predict":
        args = ["predict", "--ckpt", str(path), "--input", str(trained["pairs"]), "--output",
                str(root / "preds.csv"), "--overwrite"]
    else:
        args = ["test", "--ckpt", str(path), "--trainer.default_root_dir", str(root / "test"),
                "--trainer.enable_progress_bar", "false"]
    with no_hang(60):
        code, err = _cli(args)
    TALLY[f"checkpoints:{_assert_clean_exit(code, err)}"] += 1


@pytest.fixture(scope="module")
def checkpoint_strategy(trained: dict[str, object]) -> st.SearchStrategy[bytes]:
    return broken_checkpoints(Path(str(trained["ckpt"])).read_bytes(), trained["dict"])


@settings(FAST, max_examples=50)
@given(data=st.data())
def test_fuzzed_checkpoints_predict_or_fail_in_one_line(trained: dict[str, object],
                                                        checkpoint_strategy, data) -> None:
    _ckpt_case(trained, data.draw(checkpoint_strategy), "predict")


@settings(FAST, max_examples=8)
@given(data=st.data())
def test_fuzzed_checkpoints_test_or_fail_in_one_line(trained: dict[str, object],
                                                     checkpoint_strategy, data) -> None:
    _ckpt_case(trained, data.draw(checkpoint_strategy), "test")


@pytest.mark.slow
@settings(SLOW, max_examples=300)
@given(data=st.data(), command=st.sampled_from(["predict", "predict", "predict", "test"]))
def test_fuzzed_checkpoints_many(trained: dict[str, object], checkpoint_strategy, data,
                                 command: str) -> None:
    _ckpt_case(trained, data.draw(checkpoint_strategy), command)
