"""Every bad input raises DataError with one line naming the bad thing."""

from __future__ import annotations

import zipfile
from dataclasses import replace

import pandas as pd
import pytest

from reclight.data import (
    RatingDataModule,
    fetch,
    make_synthetic,
    read_ratings,
    resolve_source,
    sources,
)
from reclight.errors import DataError

GOOD = "1\t1\t5\t10\n1\t2\t3\t20\n2\t1\t4\t30\n2\t2\t2\t40\n3\t1\t1\t50\n3\t2\t4\t60\n"


def _raises(match: str, func, *args, **kwargs) -> str:
    with pytest.raises(DataError, match=match) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message  # one line, no traceback text
    return message


# ---- readers --------------------------------------------------------------------------------
def test_missing_file(tmp_path) -> None:
    _raises(r"nope\.csv' does not exist", read_ratings, tmp_path / "nope.csv")


def test_empty_file(write) -> None:
    _raises("is empty", read_ratings, write("u.data", ""))
    _raises("is empty", read_ratings, write("blank.csv", "\n\n  \n"))


def test_header_without_rows(write) -> None:
    _raises("header line but no ratings", read_ratings, write("h.csv", "userId,movieId,rating\n"))


def test_too_many_fields_names_the_line(write) -> None:
    text = GOOD + "4\t1\t3\t70\t99\n"
    msg = _raises(r"u\.data line 7: expected 4 fields, found 5", read_ratings,
                  write("u.data", text))
    assert "4\\t1\\t3\\t70\\t99" in msg


def test_too_few_fields_names_the_line(write) -> None:
    _raises(r"line 3: expected 4 fields, found 2 \('9\\t9'\)", read_ratings,
            write("u.data", "1\t1\t5\t10\n1\t2\t3\t20\n9\t9\n"))


def test_non_numeric_rating_names_the_line(write) -> None:
    _raises(r"u\.data line 17: rating 'abc' is not a number; fix or remove the line",
            read_ratings, write("u.data", GOOD * 2 + "1\t1\t5\t10\n1\t1\t5\t10\n"
                                 "1\t1\t5\t10\n1\t1\t5\t10\n7\t7\tabc\t1\n"))


def test_non_numeric_rating_line_counts_header_and_blank_lines(write) -> None:
    _raises(r"r\.csv line 5: rating 'x'", read_ratings,
            write("r.csv", "user,item,rating\n1,2,3\n\n4,5,6\n7,8,x\n"))


def test_nan_rating_names_the_line(write) -> None:
    _raises(r"ratings\.csv line 3: rating 'NaN' is not a number", read_ratings,
            write("ratings.csv", "userId,movieId,rating,timestamp\n1,2,4,5\n1,3,NaN,6\n"))


def test_missing_rating_names_the_line(write) -> None:
    _raises(r"ratings\.csv line 2: rating is missing", read_ratings,
            write("ratings.csv", "userId,movieId,rating,timestamp\n1,2,,5\n"))


def test_missing_user_id(write) -> None:
    _raises(r"line 3: user id is missing", read_ratings,
            write("x.csv", "user,item,rating\n1,2,3\n,2,3\n"))


def test_bad_timestamp(write) -> None:
    _raises(r"line 2: timestamp 'yesterday'", read_ratings,
            write("t.csv", "user,item,rating,timestamp\n1,2,3,yesterday\n4,5,3,100\n"))


def test_unknown_column_lists_available(write) -> None:
    path = write("m.csv", "customer,product,stars\n1,2,3\n")
    msg = _raises(r"no column 'user_name' in 'm\.csv'", read_ratings, path,
                  columns="user=user_name,item=product,rating=stars")
    assert "available: customer, product, stars" in msg


def test_bad_column_specs(write) -> None:
    path = write("m.csv", "customer,product,stars\n1,2,3\n")
    _raises("unknown role 'movie'", read_ratings, path, columns="user=customer,movie=product")
    _raises(r"does not map item; map user and item \(rating and timestamp are optional",
            read_ratings, path, columns="user=customer,rating=stars")
    _raises("'user' is not role=column", read_ratings, path, columns="user,item=1,rating=2")
    _raises("position 7 for rating is out of range", read_ratings, path,
            columns="user=0,item=1,rating=7")
    _raises("needs a header line", read_ratings, write("n.txt", "1\t2\t3\n"),
            columns="user=a,item=b,rating=c")


def test_partly_recognised_header_asks_for_mapping(write) -> None:
    _raises(r"cannot tell which columns .* hold item, rating", read_ratings,
            write("p.csv", "userId,thing,value\n1,2,3\n"))
    _raises(r"cannot tell which columns .* hold user, item", read_ratings,
            write("q.csv", "who,what,rating\n1,2,3\n"))


def test_third_headerless_column_is_a_rating_not_an_implicit_log(write) -> None:
    # Three or more headerless columns mean user, item, rating: text there is a bad rating.
    _raises(r"x\.csv line 2: rating 'liked' is not a number; fix or remove the line",
            read_ratings, write("x.csv", "alice,matrix,5\nbob,alien,liked\n"))
    _raises(r"y\.csv line 1: rating 'yes' is not a number", read_ratings,
            write("y.csv", "alice,matrix,yes\nbob,alien,no\n"))


def test_implicit_log_with_missing_item_names_the_line(write) -> None:
    _raises(r"plays\.csv line 2: item id is missing", read_ratings,
            write("plays.csv", "1,2\n3,\n"))


def test_table_of_one_column() -> None:
    _raises(r"the DataFrame has 1 column\(s\); interactions need user and item columns",
            resolve_source, pd.DataFrame({"x": [1, 2]}))


def test_folder_is_not_a_file(tmp_path) -> None:
    _raises("is a folder", read_ratings, tmp_path)


def test_corrupt_parquet(write) -> None:
    pytest.importorskip("pyarrow")
    _raises(r"cannot read .* as Parquet", read_ratings, write("x.parquet", "not parquet"))


def test_dataframe_with_bad_rating() -> None:
    frame = pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"], "rating": ["4", "good"]})
    _raises(r"DataFrame row 1: rating 'good' is not a number", resolve_source, frame)


# ---- sources --------------------------------------------------------------------------------
def _serve_from(monkeypatch, url: str) -> None:
    """Point the ml-100k download at ``url`` for one test."""
    monkeypatch.setitem(fetch.DOWNLOADS, "ml-100k", replace(fetch.DOWNLOADS["ml-100k"], url=url))


def test_unknown_source_lists_builtins() -> None:
    _raises(r"'ml-nope' is not an existing file or folder, nor a built-in data set "
            r"\(synthetic, ml-100k, ml-1m\)", resolve_source, "ml-nope")


def test_folder_without_ratings(tmp_path) -> None:
    _raises("holds none of u.data, ratings.dat, ratings.csv", resolve_source, tmp_path)


def test_offline_download(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RECLIGHT_DATA", raising=False)
    _serve_from(monkeypatch, "http://127.0.0.1:9/ml-100k.zip")
    msg = _raises(r"cannot download ml-100k \(.*\); put the MovieLens files \(u\.data, u1\.base, "
                  r"\.\.\.\) in \$RECLIGHT_DATA/ml-100k or ", resolve_source, "ml-100k")
    assert str(tmp_path / "cache" / "reclight" / "ml-100k") in msg


def test_download_with_wrong_checksum(tmp_path, monkeypatch) -> None:
    archive = tmp_path / "fake.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t2\t3\t4\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RECLIGHT_DATA", raising=False)
    _serve_from(monkeypatch, archive.as_uri())
    _raises("fails its sha256 check", resolve_source, "ml-100k")
    assert not (tmp_path / "cache" / "reclight" / "ml-100k").exists()


def test_download_verified_into_cache(tmp_path, monkeypatch, ml100k_dir) -> None:
    archive = tmp_path / "ml-100k.zip"  # a local archive of the real file, outside the repo
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(ml100k_dir / "u.data", "ml-100k/u.data")
        zf.write(ml100k_dir / "u1.base", "ml-100k/u1.base")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RECLIGHT_DATA", raising=False)
    _serve_from(monkeypatch, archive.as_uri())
    src = resolve_source("ml-100k")
    assert src.path == tmp_path / "cache" / "reclight" / "ml-100k" / "u.data"
    assert (src.directory / "u1.base").is_file()


def test_builtin_in_reclight_data_is_reported_and_read(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("RECLIGHT_DATA", str(tmp_path))
    assert sources.dataset_locations("ml-1m") == (
        f"not found in {tmp_path / 'ml-1m'}, {tmp_path / 'cache' / 'reclight' / 'ml-1m'}; "
        "downloaded on first use from https://files.grouplens.org/datasets/movielens/ml-1m.zip")
    (tmp_path / "ml-1m").mkdir()
    (tmp_path / "ml-1m" / "ratings.dat").write_text("1::2::3::4\n")
    assert sources.dataset_locations("ml-1m") == f"found in {tmp_path / 'ml-1m'}"
    src = resolve_source("ml-1m")
    assert src.path == tmp_path / "ml-1m" / "ratings.dat" and src.label == "ml-1m"
    assert sources.dataset_locations("synthetic").startswith("generated on the fly")


# ---- DataModule options and splits ----------------------------------------------------------
@pytest.fixture
def small(write):
    return write("u.data", GOOD)


def test_unknown_split_lists_choices(small) -> None:
    _raises(r"unknown split 'bogus'; choose one of random, kfold, leave_k_out, temporal, none",
            RatingDataModule, str(small), split="bogus")


def test_predefined_fold_needs_fold_files(small) -> None:
    _raises(r"split 'u1' needs u1\.base and u1\.test", RatingDataModule, str(small), split="u1")
    _raises(r"split 'u2' needs", RatingDataModule, "synthetic", split="u2")


def test_temporal_needs_timestamps(write) -> None:
    path = write("x.csv", "user,item,rating\n1,2,3\n2,3,4\n")
    _raises("split 'temporal' needs timestamps", RatingDataModule, str(path), split="temporal")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"split": "random", "test_size": 1.5}, r"test_size=1\.5 must be a fraction"),
    ({"split": "random", "test_size": 0.0}, r"test_size=0\.0 must be a fraction"),
    ({"split": "kfold", "num_folds": 3, "fold": 3}, r"fold=3 is out of range .* use 0\.\.2"),
    ({"split": "kfold", "num_folds": 1}, r"num_folds=1 must be >= 2"),
    ({"split": "leave_k_out", "leave_k": 0}, r"leave_k=0 must be >= 1"),
    ({"split": "temporal", "time_cut": -1.0}, r"time_cut=-1\.0 must be"),
    ({"val_size": 1.0}, r"val_size=1\.0 must be 0"),
    ({"batch_size": 0}, r"batch_size=0"),
    ({"min_user_ratings": 99}, r"min_user_ratings=99 removes every user"),
])
def test_bad_parameters(small, kwargs, match) -> None:
    _raises(match, RatingDataModule, str(small), **kwargs)


def test_empty_test_sets(small) -> None:
    _raises(r"split 'leave_k_out' leaves the test set empty .* lower leave_k",
            RatingDataModule, str(small), split="leave_k_out", leave_k=2)
    _raises(r"split 'random' leaves the test set empty .* raise test_size",
            RatingDataModule, str(small), split="random", test_size=0.01)
    _raises(r"split 'temporal' leaves the test set empty", RatingDataModule, str(small),
            split="temporal", time_cut=1000.0)
    _raises(r"split 'temporal' leaves the training set empty", RatingDataModule, str(small),
            split="temporal", time_cut=5.0)


def test_empty_validation_set(small) -> None:
    _raises(r"val_size=0\.01 leaves the validation set empty", RatingDataModule, str(small),
            val_size=0.01, split="none")


def test_duplicates_error_policy(write) -> None:
    path = write("u.data", GOOD + "2\t1\t5\t70\n1\t1\t1\t80\n2\t1\t3\t90\n")
    _raises(r"3 duplicate ratings: the pair \(user '1', item '1'\) is rated 2 times \(first at "
            r"rating #1\); remove the repeats or pass duplicates=last", RatingDataModule, str(path),
            duplicates="error", split="none")


def test_unknown_duplicates_policy(small) -> None:
    _raises(r"duplicates='first' is not a policy; choose one of last, error", RatingDataModule,
            str(small), duplicates="first")


def test_rating_range_violation(write) -> None:
    path = write("u.data", GOOD + "4\t4\t7\t1\n5\t5\t0\t1\n")
    _raises(r"2 ratings of .*u\.data are outside rating_range=\(1, 5\); the first is 7 "
            r"\(rating #7\)", RatingDataModule, str(path), rating_range=(1.0, 5.0))
    _raises(r"rating_range=\(5\.0, 1\.0\) is empty", RatingDataModule, str(path),
            rating_range=(5.0, 1.0))


def test_unknown_view(small) -> None:
    dm = RatingDataModule(str(small), split="none")
    _raises(r"unknown data view 'dense'; registered views: .*implicit_user_rows, item_rows, "
            r"matrix, negative_pairs, pairs, user_rows.*register_view", dm.set_view, "dense")


def test_synthetic_arguments() -> None:
    _raises(r"synthetic_ratings=0 must be >= 1", make_synthetic, 0)
    _raises(r"synthetic_ratings=5000 would fill more than 30% of 10 users x 10 items",
            make_synthetic, 5000, 10, 10)
    _raises(r"synthetic_rank=-1", make_synthetic, 100, rank=-1)


def test_short_first_data_line_is_the_one_reported(write) -> None:
    _raises(r"line 2: expected 4 fields, found 3", read_ratings,
            write("ratings.csv", "userId,movieId,rating,timestamp\n1,2,3\n4,5,4,100\n"))


def test_other_multi_character_separator(write) -> None:
    df = read_ratings(write("x.txt", "1||2||3\n4||5||4\n"), sep="||")
    assert df["rating"].tolist() == [3.0, 4.0]
    _raises(r"x2\.txt line 2: expected 3 fields, found 4", read_ratings,
            write("x2.txt", "1||2||3\n4||5||4||9\n"), sep="||")



def test_rating_range_needs_ratings(write) -> None:
    path = write("plays.csv", "1,2\n3,4\n5,6\n1,4\n")
    _raises(r"rating_range=\(1, 5\) is for ratings but .*plays\.csv has no rating column "
            r"\(implicit interactions\); drop rating_range or map a rating column",
            RatingDataModule, str(path), rating_range=(1.0, 5.0), split="none")


def test_duplicate_interactions_error_policy(write) -> None:
    path = write("plays.csv", "1,2\n3,4\n1,2\n")
    _raises(r"1 duplicate ratings: the pair \(user '1', item '2'\) is rated 2 times",
            RatingDataModule, str(path), duplicates="error", split="none")


# ---- hostile bytes: compression, long lines, overflow, NUL ----------------------------------
def test_broken_compressed_files_say_so(tmp_path) -> None:
    import gzip
    import io

    gz = tmp_path / "ratings.csv.gz"
    gz.write_bytes(gzip.compress(b"1,2,3\n" * 1000)[:-40])
    _raises(r"ratings\.csv\.gz' is gzip-compressed but cannot be decompressed", read_ratings, gz)
    empty = tmp_path / "e.gz"
    empty.write_bytes(gzip.compress(b"\n\n"))
    _raises(r"gzip-compressed and holds no ratings", read_ratings, empty)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", "1,2,3\n")
        archive.writestr("b.csv", "1,2,3\n")
    two = tmp_path / "two.zip"
    two.write_bytes(buffer.getvalue())
    _raises(r"zip archive of 2 files \(a\.csv, b\.csv\).*exactly one", read_ratings, two)
    zst = tmp_path / "r.csv.zst"
    zst.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 20)
    _raises(r"zstd-compressed.*zstd -d", read_ratings, zst)


def test_one_huge_line_is_not_called_empty(tmp_path, monkeypatch) -> None:
    # The same case as a 200 MB file of one line, at a twentieth of the limit it trips.
    from reclight.data import readers

    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 1 << 20)
    path = tmp_path / "ratings.csv"
    path.write_bytes(b"1,2,3," * ((2 << 20) // 6))
    _raises(r"has no line break in its first 1 MiB.*one rating per line", read_ratings, path)
    # A long first line below the limit is read, and its real problem named.
    path.write_bytes(b"1,2," + b"4" * 200_000 + b"\n2,3,4\n")
    _raises(r"ratings\.csv line 1: rating 4e\+199999|line 1: rating '4444", read_ratings, path)


@pytest.mark.parametrize("value", ["1e39", "-1e39", "1e308", "3.5e38"])
def test_ratings_beyond_float32_are_rejected(write, value) -> None:
    _raises(r"r\.csv line 2: rating .* beyond the float32 range", read_ratings,
            write("r.csv", f"1,1,4\n2,1,{value}\n"))
    frame = pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [4.0, float(value)]})
    _raises(r"DataFrame row 1: rating .* beyond the float32 range", resolve_source, frame)


@pytest.mark.parametrize("value", ["1e39", "1e308", "-9.3e18"])
def test_timestamps_beyond_int64_are_rejected(write, value) -> None:
    _raises(r"t\.csv line 3: timestamp .* beyond the int64 range", read_ratings,
            write("t.csv", f"1,1,4,10\n2,1,3,20\n3,1,2,{value}\n"))


def test_nul_bytes_in_ids_are_rejected(tmp_path) -> None:
    path = tmp_path / "n.csv"
    path.write_bytes(b"1,10,4\n\x00,10,3\n")
    _raises(r"n\.csv line 2: user id '\\x00' holds a NUL byte", read_ratings, path)
    path.write_bytes(b"1,10,4\n2,1\x000,3\n")
    _raises(r"n\.csv line 2: item id '1\\x000' holds a NUL byte", read_ratings, path)
    frame = pd.DataFrame({"user": ["a", "b\x00"], "item": ["1", "2"], "rating": [1.0, 2.0]})
    _raises(r"DataFrame row 1: user id .* NUL byte", resolve_source, frame)


def test_blank_id_after_stripping_is_missing(write) -> None:
    _raises(r"line 2: user id is missing", read_ratings, write("b.csv", "1,1,3\n  ,2,3\n"))


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch) -> None:
    # pyarrow is a dependency; an environment that lost it gets one line naming the fix.
    # (pandas itself imports pyarrow once loaded, so the missing engine is simulated where
    # pandas reports it.)
    def no_engine(*args, **kwargs):
        raise ImportError("Unable to find a usable engine; tried using: 'pyarrow', 'fastparquet'")

    monkeypatch.setattr(pd, "read_parquet", no_engine)
    path = tmp_path / "r.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 32 + b"PAR1")
    _raises(r"Parquet file 'r\.parquet' needs pyarrow.*pip install 'reclight\[parquet\]'",
            read_ratings, path)


def test_pyarrow_is_a_dependency_of_a_plain_install() -> None:
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert any(dep.replace(" ", "").startswith("pyarrow") for dep in project["dependencies"])
