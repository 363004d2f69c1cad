"""read_ratings and resolve_source: every supported format, column mapping, id handling,
interaction logs without ratings, and what each kind of source loads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reclight.data import SyntheticSpec, make_synthetic, read_ratings, resolve_source
from reclight.data.sources import FileSource, FrameSource, SyntheticSource
from reclight.errors import DataError


def _check_schema(df: pd.DataFrame, timestamps: bool = True, ratings: bool = True) -> None:
    expected = (["user", "item"] + (["rating"] if ratings else [])
                + (["timestamp"] if timestamps else []))
    assert list(df.columns) == expected
    assert df["user"].dtype == "str" and df["item"].dtype == "str"
    if ratings:
        assert df["rating"].dtype == np.float32
    if timestamps:
        assert df["timestamp"].dtype == np.int64


def test_movielens_u_data(write) -> None:
    path = write("u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n"
                           "22\t377\t1\t878887116\n")
    df = read_ratings(path)
    _check_schema(df)
    assert df["user"].tolist() == ["196", "186", "22"]  # file order, string ids
    assert df["item"].tolist() == ["242", "302", "377"]
    assert df["rating"].tolist() == [3.0, 3.0, 1.0]
    assert df["timestamp"].tolist() == [881250949, 891717742, 878887116]


def test_fold_file_suffix_is_movielens(write) -> None:
    df = read_ratings(write("u1.base", "1\t1\t5\t874965758\n1\t2\t3\t876893171\n"))
    assert len(df) == 2 and df["timestamp"].iloc[1] == 876893171


def test_real_ml100k(ml100k_dir) -> None:
    df = read_ratings(ml100k_dir / "u.data")
    _check_schema(df)
    assert len(df) == 100_000
    assert df["user"].nunique() == 943 and df["item"].nunique() == 1682
    assert set(np.unique(df["rating"])) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert df.iloc[0].tolist() == ["196", "242", 3.0, 881250949]


def test_ratings_dat_double_colon(write) -> None:
    path = write("ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n"
                                "2::1357::5::978298709\n")
    df = read_ratings(path)
    _check_schema(df)
    assert df["item"].tolist() == ["1193", "661", "1357"]
    assert df["timestamp"].tolist() == [978300760, 978302109, 978298709]


def test_ratings_csv_with_header(write) -> None:
    path = write("ratings.csv", "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n"
                                "1,1029,3.0,1260759179\n7,1061,4.5,1260759182\n")
    df = read_ratings(path)
    _check_schema(df)
    assert df["rating"].tolist() == [2.5, 3.0, 4.5]
    assert df["user"].tolist() == ["1", "1", "7"]


def test_generic_tsv_header_without_timestamp(write) -> None:
    df = read_ratings(write("data.tsv", "user_id\titem_id\trating\nu1\ti9\t4\nu2\ti9\t2\n"))
    _check_schema(df, timestamps=False)
    assert df["user"].tolist() == ["u1", "u2"]


def test_generic_csv_without_header_is_positional(write) -> None:
    df = read_ratings(write("x.csv", "alice,matrix,5\nbob,alien,3\n"))
    _check_schema(df, timestamps=False)
    assert df["item"].tolist() == ["matrix", "alien"]


def test_sniffs_semicolon_and_whitespace(write) -> None:
    assert read_ratings(write("a.txt", "1;2;4\n3;4;5\n"))["rating"].tolist() == [4.0, 5.0]
    df = read_ratings(write("b.txt", "1  2 4   100\n3 4\t5 200\n"))
    assert df["timestamp"].tolist() == [100, 200]


def test_explicit_separator(write) -> None:
    assert len(read_ratings(write("c.txt", "1\t2\t3\n"), sep="\\t")) == 1
    assert len(read_ratings(write("d.txt", "1::2::3\n"), sep="::")) == 1


def test_ids_keep_their_text(write) -> None:
    df = read_ratings(write("e.csv", "user,item,rating\n007,0042,1\n7,42,2\n"))
    assert df["user"].tolist() == ["007", "7"] and df["item"].tolist() == ["0042", "42"]


def test_blank_lines_are_skipped(write) -> None:
    df = read_ratings(write("f.csv", "userId,movieId,rating\n\n1,2,3\n\n4,5,1\n\n\n"))
    assert df["user"].tolist() == ["1", "4"]


def test_parquet(tmp_path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "r.parquet"
    pd.DataFrame({"userId": [1, 2], "movieId": [10, 20], "rating": [4.0, 3.5],
                  "timestamp": [5, 6]}).to_parquet(path)
    df = read_ratings(path)
    _check_schema(df)
    assert df["user"].tolist() == ["1", "2"] and df["item"].tolist() == ["10", "20"]
    assert df["rating"].tolist() == [4.0, 3.5]


def test_column_mapping_by_name(write) -> None:
    path = write("m.csv", "when,stars,customer,product\n100,4,c1,p1\n200,2,c2,p1\n")
    df = read_ratings(path, columns="user=customer,item=product,rating=stars,timestamp=when")
    _check_schema(df)
    assert df.iloc[1].tolist() == ["c2", "p1", 2.0, 200]


def test_column_mapping_by_position(write) -> None:
    df = read_ratings(write("p.txt", "i1\tu1\t5\ni2\tu2\t1\n"), columns="user=1,item=0,rating=2")
    assert df["user"].tolist() == ["u1", "u2"] and df["item"].tolist() == ["i1", "i2"]


def test_column_mapping_parquet_by_name(tmp_path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "m.parquet"
    pd.DataFrame({"a": ["x"], "b": ["y"], "s": [3]}).to_parquet(path)
    df = read_ratings(path, columns="user=a,item=b,rating=s")
    assert df.iloc[0].tolist() == ["x", "y", 3.0]


def test_float_and_iso_timestamps_take_the_checked_path(write) -> None:
    df = read_ratings(write("t.csv", "user,item,rating,timestamp\n1,2,3,100.7\n"))
    assert df["timestamp"].tolist() == [100]
    df = read_ratings(write("d.csv", "user,item,rating,timestamp\n1,2,3,1970-01-02T00:00:00Z\n"))
    assert df["timestamp"].tolist() == [86400]


# ---- interaction logs without ratings (implicit) --------------------------------------------
@pytest.mark.parametrize(("name", "text"), [
    ("plays.csv", "alice,matrix\nbob,alien\n"),  # pyarrow's fast read
    ("u.data", "alice\tmatrix\nbob\talien\n"),  # MovieLens naming, tab
    ("plays.txt", "alice  matrix\nbob alien\n"),  # whitespace: pandas' read
])
def test_two_headerless_columns_are_user_and_item_without_rating(write, name, text) -> None:
    df = read_ratings(write(name, text))
    _check_schema(df, timestamps=False, ratings=False)
    assert df.values.tolist() == [["alice", "matrix"], ["bob", "alien"]]


def test_header_with_user_and_item_but_no_rating_is_implicit(write) -> None:
    df = read_ratings(write("log.csv", "userId,movieId,timestamp\n1,10,100\n2,20,200\n"))
    _check_schema(df, ratings=False)
    assert df["timestamp"].tolist() == [100, 200]  # a recognised timestamp is kept
    # A column with an unrecognised name is no rating: user and item alone decide.
    df = read_ratings(write("clicks.tsv", "user_id\titem_id\tclicks\nu1\ti1\t7\n"))
    _check_schema(df, timestamps=False, ratings=False)


def test_columns_without_rating_read_interactions(write) -> None:
    path = write("ratings.csv", "userId,movieId,rating,timestamp\n1,31,2.5,100\n7,9,4.0,200\n")
    df = read_ratings(path, columns="user=userId,item=movieId")
    _check_schema(df, ratings=False)  # the rating column is left out as asked
    assert df["item"].tolist() == ["31", "9"] and df["timestamp"].tolist() == [100, 200]
    df = read_ratings(write("pos.txt", "9\t1\tx\t50\n8\t2\ty\t60\n"),
                      columns="user=1,item=0,timestamp=3")
    _check_schema(df, ratings=False)
    assert df.values.tolist() == [["1", "9", 50], ["2", "8", 60]]


def test_implicit_iso_timestamps_take_the_checked_path(write) -> None:
    df = read_ratings(write("i.csv", "user,item,timestamp\n1,2,1970-01-02T00:00:00Z\n"))
    _check_schema(df, ratings=False)
    assert df["timestamp"].tolist() == [86400]


def test_implicit_parquet(tmp_path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "log.parquet"
    pd.DataFrame({"user": [1, 2], "item": ["a", "b"]}).to_parquet(path)
    df = read_ratings(path)
    _check_schema(df, timestamps=False, ratings=False)
    assert df["user"].tolist() == ["1", "2"]


def test_dataframe_with_only_user_and_item_is_implicit() -> None:
    src = resolve_source(pd.DataFrame({"user": [1, 2], "item": ["a", "b"]}))
    _check_schema(src.frame, timestamps=False, ratings=False)


# ---- sources --------------------------------------------------------------------------------
def test_dataframe_source_is_normalised() -> None:
    frame = pd.DataFrame({"userId": [1, 2], "movieId": [3.0, 4.0], "rating": [5, 4]})
    src = resolve_source(frame)
    assert isinstance(src, FrameSource) and src.label == "DataFrame (2 rows)"
    _check_schema(src.frame, timestamps=False)
    assert src.frame["user"].tolist() == ["1", "2"] and src.frame["item"].tolist() == ["3", "4"]


def test_folder_source_finds_ratings_file(ml100k_dir) -> None:
    src = resolve_source(ml100k_dir)
    assert isinstance(src, FileSource) and src.label == str(ml100k_dir)
    assert src.path == ml100k_dir / "u.data" and src.directory == ml100k_dir


def test_synthetic_is_a_source_that_generates_its_table() -> None:
    src = resolve_source("synthetic", synthetic=SyntheticSpec(num_ratings=2000, seed=4))
    assert isinstance(src, SyntheticSource)
    table = src.load("kfold")
    assert table.known_unique and table.is_test is None  # distinct pairs, no fold files
    pd.testing.assert_frame_equal(table.frame, make_synthetic(2000, seed=4))
    assert resolve_source("synthetic").label == "synthetic (20000 ratings)"  # the default spec


def test_sources_read_nothing_before_load(write) -> None:
    bad = resolve_source(write("bad.csv", "user,item,rating\n1,2,x\n"))
    with pytest.raises(DataError, match="rating 'x' is not a number"):
        bad.load("random")
    tiny = resolve_source("synthetic", synthetic=SyntheticSpec(num_ratings=0))
    with pytest.raises(DataError, match="synthetic_ratings=0"):
        tiny.load("random")


def test_fold_split_loads_base_then_test_rows(ml100k_dir) -> None:
    table = resolve_source(ml100k_dir / "u.data").load("u1")
    base = read_ratings(ml100k_dir / "u1.base")
    test = read_ratings(ml100k_dir / "u1.test")
    assert table.is_test.tolist() == [False] * len(base) + [True] * len(test)
    pd.testing.assert_frame_equal(table.frame, pd.concat([base, test], ignore_index=True))
    assert table.label == str(ml100k_dir / "u.data") and not table.known_unique


# ---- compressed and re-encoded files (read by their first bytes, as pandas reads them) --------
RATINGS_CSV = b"userId,movieId,rating,timestamp\n1,10,4.0,100\n2,20,3.5,200\n"


def _compressed(kind: str, data: bytes) -> bytes:
    import bz2
    import gzip
    import io
    import lzma
    import zipfile

    if kind == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("ratings.csv", data)
        return buffer.getvalue()
    return {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind](data)


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz", "zip"])
def test_compressed_ratings_read_as_pandas_reads_them(tmp_path, kind) -> None:
    path = tmp_path / f"ratings.csv.{kind}"
    path.write_bytes(_compressed(kind, RATINGS_CSV))
    df = read_ratings(path)
    _check_schema(df)
    expected = pd.read_csv(path, dtype={"userId": str, "movieId": str})  # pandas' own reading
    assert df["user"].tolist() == expected["userId"].tolist()
    assert df["rating"].tolist() == expected["rating"].astype("float32").tolist()
    misnamed = tmp_path / f"ratings-{kind}.csv"  # a suffix that hides the compression
    misnamed.write_bytes(path.read_bytes())
    assert read_ratings(misnamed).equals(df)


def test_compressed_movielens_file_keeps_its_format(tmp_path) -> None:
    import gzip

    path = tmp_path / "u.data.gz"
    path.write_bytes(gzip.compress(b"1\t2\t3\t4\n5\t6\t1\t8\n"))
    df = read_ratings(path)
    assert df["item"].tolist() == ["2", "6"] and df["timestamp"].tolist() == [4, 8]


def test_utf16_text_is_read(tmp_path) -> None:
    path = tmp_path / "excel.txt"
    path.write_bytes("user\titem\trating\nzoë\t1\t4\n".encode("utf-16"))
    assert read_ratings(path)["user"].tolist() == ["zoë"]


def test_parquet_is_recognised_by_content(tmp_path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "ratings.bin"
    pd.DataFrame({"user": ["1"], "item": ["2"], "rating": [3.0]}).to_parquet(path)
    assert read_ratings(path)["item"].tolist() == ["2"]


def test_ids_with_spaces_around_are_one_id(write) -> None:
    df = read_ratings(write("s.csv", "1 ,10,4\n 1,\t10 ,3\n1,11,2\n"))
    assert df["user"].tolist() == ["1", "1", "1"] and df["item"].tolist() == ["10", "10", "11"]
    frame = read_ratings(write("q.csv", '" 7 ",x,1\n'))  # quotes keep no spaces either
    assert frame["user"].tolist() == ["7"]
