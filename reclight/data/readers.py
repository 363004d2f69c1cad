"""Read a ratings file (MovieLens, CSV/TSV, Parquet) or a DataFrame into the standard table.

Clean files take a fast typed read (pyarrow's multi-threaded CSV parser where available).
Anything the fast read rejects or gets wrong is read again as plain text, slowly, to name the
first bad line exactly (1-based line numbers of the file, header and blank lines included).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reclight.data.schema import (
    KNOWN_NAMES,
    Label,
    Locate,
    canonical,
    parse_columns,
    resolve_columns,
    standardize,
)
from reclight.errors import DataError

SNIFF_BYTES = 1 << 16
SEPARATORS = ("::", "\t", ",", ";", "|")  # tried in this order on the first line
WHITESPACE = r"\s+"
# '::' is two characters, which pandas' fast parsers cannot split on: we rewrite it in memory
# to this one (the ASCII unit separator, which never occurs in rating files).
UNIT_SEP = "\x1f"
SEP_ALIASES = {"\\t": "\t", "tab": "\t", "space": WHITESPACE, "whitespace": WHITESPACE}
PARQUET_SUFFIXES = (".parquet", ".pq")
_C_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


@dataclass
class _Layout:
    """What the first lines of a text file say about the rest of it."""

    sep: str  # as the user writes it ("::", "\t", r"\s+")
    pandas_sep: str  # as given to pandas ("::" is rewritten to UNIT_SEP)
    header: list[str] | None
    ncols: int
    first: list[str]  # fields of the first data line
    skip: int  # physical lines before the data (leading blanks and the header)


def read_ratings(path: str | Path, columns: str | None = None,
                 sep: str | None = None) -> pd.DataFrame:
    """Read ratings from ``path`` into columns ``user``, ``item`` (str), ``rating`` (float32,
    absent for an interaction log without ratings) and ``timestamp`` (int64, when the file has
    one), rows in file order.

    Formats: MovieLens ``u.data``/``uN.base``/``uN.test`` (tab, no header), ``ratings.dat``
    (``::``, no header), ``ratings.csv`` (header ``userId,movieId,rating,timestamp``), any
    CSV/TSV (separator and header sniffed) and Parquet (``.parquet``).

    Args:
        path: the ratings file.
        columns: mapping such as ``"user=userId,item=movieId,rating=stars,timestamp=ts"``
            (header names) or ``"user=0,item=1,rating=2"`` (0-based positions); without
            ``rating`` the data are implicit interactions. Without a mapping, recognised header
            names (userId/user_id/user, movieId/item_id/item, rating, timestamp, ...) are used
            (user and item without a rating name: implicit), else the first 3-4 columns in
            that order, or user, item for a file of two columns (implicit).
        sep: field separator (``"\\t"``/``"tab"``, ``","``, ``"::"``, ``"space"``...);
            sniffed from the first line when omitted.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"ratings file '{path}' does not exist; check the path")
    if path.is_dir():
        raise DataError(f"'{path}' is a folder, not a ratings file; pass the file inside it "
                        "(u.data, ratings.dat, ratings.csv) or use the folder as the data source")
    if path.stat().st_size == 0:
        raise DataError(f"ratings file '{path}' is empty; point to a file with ratings")
    spec = parse_columns(columns)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return _read_parquet(path, spec)
    return _read_text(path, spec, sep)


# ---- DataFrames and Parquet ------------------------------------------------------------------
def read_frame(frame: pd.DataFrame, columns: str | None = None) -> pd.DataFrame:
    """A user's DataFrame in the standard columns; ``columns`` as for :func:`read_ratings`."""
    return _from_frame(frame, parse_columns(columns), what="the DataFrame",
                       where="the DataFrame", fix="pass a DataFrame with ratings",
                       locate=lambda i: f"DataFrame row {frame.index[i]!r}")


def _read_parquet(path: Path, spec: dict[str, Label]) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path)
    except ImportError as exc:
        raise DataError(f"reading '{path.name}' needs pyarrow ({exc}); "
                        "run: pip install 'reclight[parquet]'") from None
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read '{path}' as Parquet ({reason}); check the file") from None
    return _from_frame(table, spec, what=f"'{path.name}'", where=f"'{path}'",
                       fix="point to a file with ratings",
                       locate=lambda i: f"{path.name} row {i + 1}")


def _from_frame(frame: pd.DataFrame, spec: dict[str, Label], *, what: str, where: str,
                fix: str, locate: Locate) -> pd.DataFrame:
    """Map, check and convert a typed table (a DataFrame, a Parquet file's contents).

    ``what`` names the table in column errors, ``where`` and ``fix`` make the message for a
    table without rows, ``locate`` names a row.
    """
    header = [str(c) for c in frame.columns]
    # Typed tables say outright whether the 4th column holds numbers (a timestamp).
    numeric_4th = frame.shape[1] >= 4 and pd.api.types.is_numeric_dtype(frame.dtypes.iloc[3])
    roles = resolve_columns(spec, header, len(header), what, numeric_4th)
    if len(frame) == 0:
        raise DataError(f"{where} has columns ({', '.join(header)}) but no rows; {fix}")
    return standardize(frame, roles, locate)


# ---- text: layout sniffing -------------------------------------------------------------------
def _normalise_sep(sep: str | None) -> str | None:
    if sep is None or sep == "":
        return None
    return SEP_ALIASES.get(sep.lower() if sep.isalpha() else sep, sep)


def _split(line: str, sep: str) -> list[str]:
    if sep == WHITESPACE:
        return line.split()
    if len(sep) == 1:  # the csv module honours quotes the way pandas does
        return next(csv.reader([line], delimiter=sep), [])
    return line.split(sep)


def _is_number(text: str) -> bool:
    try:
        float(text.strip().strip('"'))
    except ValueError:
        return False
    return True


def _sniff(path: Path, sep: str | None, spec: dict[str, Label]) -> _Layout:
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
        complete = not fh.read(1)
    lines = head.decode("utf-8-sig", errors="replace").splitlines()
    if not complete and lines:
        lines = lines[:-1]  # the last line may be cut in the middle
    numbered = [(n, line) for n, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise DataError(f"ratings file '{path}' is empty (only blank lines); "
                        "point to a file with ratings")
    first_no, first = numbered[0]
    name = path.name.lower()
    sep = _normalise_sep(sep)
    if sep is None:
        # MovieLens files are tab-separated; a user's fold files (X.base/X.test) are sniffed.
        if name == "u.data" or (path.suffix in (".base", ".test") and "\t" in first):
            sep = "\t"
        else:
            sep = next((s for s in SEPARATORS if s in first), None)
            if sep is None and len(first.split()) > 1:
                sep = WHITESPACE
            if sep is None:
                raise DataError(f"cannot find the field separator in {path.name} line "
                                f"{first_no + 1} ('{first[:60]}'); pass sep, e.g. ',' or '\\t'")
    fields = _split(first, sep)
    second = _split(numbered[1][1], sep) if len(numbered) > 1 else None
    header = _has_header(name, path.suffix, fields, second, spec)
    if header and second is None and complete:
        raise DataError(f"'{path}' has a header line but no ratings; add ratings below it")
    data_fields = second if header and second is not None else fields
    skip = first_no + 1 if header else 0
    names = [f.strip().strip('"') for f in fields] if header else None
    return _Layout(sep=sep, pandas_sep=UNIT_SEP if sep == "::" else sep, header=names,
                   ncols=len(fields), first=data_fields, skip=skip)


def _has_header(name: str, suffix: str, fields: list[str], second: list[str] | None,
                spec: dict[str, Label]) -> bool:
    """A first line is a header when names are mapped, when it holds a known column name,
    or when none of its fields is a number but the next line has one."""
    if name == "u.data":
        return False
    if any(isinstance(label, str) for label in spec.values()):
        return not all(_is_number(f) for f in fields)  # names need a header, numbers are data
    known = {alias for names in KNOWN_NAMES.values() for alias in names}
    if any(canonical(f) in known for f in fields):
        return True
    if any(_is_number(f) for f in fields):
        return False
    return second is None or any(_is_number(f) for f in second)


# ---- text: reading ---------------------------------------------------------------------------
def _read_text(path: Path, spec: dict[str, Label], sep: str | None) -> pd.DataFrame:
    layout = _sniff(path, sep, spec)
    numeric_4th = len(layout.first) >= 4 and _is_number(layout.first[3])
    roles = resolve_columns(spec, layout.header, layout.ncols, f"'{path.name}'", numeric_4th)
    fast = _read_fast(path, layout, roles)
    if fast is not None:
        return fast
    return _read_checked(path, layout, roles)


def _source(path: Path, layout: _Layout) -> Path | io.BytesIO:
    if layout.pandas_sep != UNIT_SEP:
        return path
    return io.BytesIO(path.read_bytes().replace(b"::", UNIT_SEP.encode()))


def _read_fast(path: Path, layout: _Layout, roles: dict[str, int]) -> pd.DataFrame | None:
    """Typed read of a clean file; None when anything looks wrong (then the checked read
    finds and names the problem)."""
    try:
        raw = _read_arrow(path, layout, roles)
        if raw is None:
            dtype: dict[int, str] = {roles["user"]: "str", roles["item"]: "str"}
            if "rating" in roles:
                dtype[roles["rating"]] = "float64"
            if "timestamp" in roles:
                dtype[roles["timestamp"]] = "int64"
            raw = pd.read_csv(_source(path, layout), sep=layout.pandas_sep, header=None,
                              skiprows=layout.skip, dtype=dtype, engine="c")
    except (ValueError, TypeError, OverflowError, pd.errors.EmptyDataError):
        return None  # pyarrow.ArrowInvalid and pandas' ParserError are ValueErrors
    if len(raw) == 0:
        return None
    cols = {role: raw[pos] for role, pos in roles.items()}
    for role in ("user", "item"):
        if bool((cols[role].isna() | (cols[role] == "")).any()):
            return None
    out = pd.DataFrame({"user": cols["user"].astype("str").reset_index(drop=True),
                        "item": cols["item"].astype("str").reset_index(drop=True)})
    if "rating" in roles:
        rating = cols["rating"].to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isfinite(rating).all():
            return None
        out["rating"] = rating.astype(np.float32)
    if "timestamp" in roles:
        if bool(cols["timestamp"].isna().any()):
            return None
        out["timestamp"] = cols["timestamp"].to_numpy(dtype=np.int64)
    return out


def _read_arrow(path: Path, layout: _Layout, roles: dict[str, int]) -> pd.DataFrame | None:
    """pyarrow's multi-threaded CSV reader with explicit column types (ids stay text: "007"
    is not 7), or None when pyarrow is missing or the separator is a regular expression."""
    try:
        import pyarrow as pa
        from pyarrow import csv as pacsv
    except ImportError:
        return None
    if layout.pandas_sep == WHITESPACE:
        return None
    names = [f"c{i}" for i in range(layout.ncols)]
    types = {names[roles["user"]]: pa.string(), names[roles["item"]]: pa.string()}
    if "rating" in roles:
        types[names[roles["rating"]]] = pa.float64()
    if "timestamp" in roles:
        types[names[roles["timestamp"]]] = pa.int64()
    source = _source(path, layout)
    table = pacsv.read_csv(
        source if isinstance(source, io.BytesIO) else str(source),
        read_options=pacsv.ReadOptions(skip_rows=layout.skip, column_names=names),
        parse_options=pacsv.ParseOptions(delimiter=layout.pandas_sep),
        convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types)))
    return pd.DataFrame({names.index(name): pd.array(table.column(name), dtype=(
        "str" if pa.types.is_string(table.column(name).type) else None)) for name in types})


def _read_checked(path: Path, layout: _Layout, roles: dict[str, int]) -> pd.DataFrame:
    """Slow read as plain text that names the first bad line, or returns the table."""
    sep, engine = layout.pandas_sep, "c"
    if len(sep) > 1 and sep != WHITESPACE:  # another multi-character separator, e.g. "||"
        sep, engine = re.escape(sep), "python"
    # Fixed names make every line count against the expected width, including a short first
    # line, so the parser's error names the truly bad line.
    kwargs: dict[str, object] = dict(sep=sep, header=None, names=list(range(layout.ncols)),
                                     skiprows=layout.skip, dtype=str, keep_default_na=False,
                                     na_filter=False, skip_blank_lines=False, engine=engine)
    try:
        try:
            raw = pd.read_csv(_source(path, layout), **kwargs)  # type: ignore[arg-type]
        except UnicodeDecodeError:  # not UTF-8: Latin-1 decodes every byte, ids stay distinct
            raw = pd.read_csv(_source(path, layout), encoding="latin-1",
                              **kwargs)  # type: ignore[arg-type]
    except pd.errors.EmptyDataError:
        raise _no_rows(path, layout) from None
    except pd.errors.ParserError as exc:
        match = _C_ERROR.search(str(exc))
        if match is None:
            raise DataError(f"cannot read '{path}': {str(exc).strip().splitlines()[-1]}") from None
        expected, line, found = (int(g) for g in match.groups())
        raise DataError(f"{path.name} line {line}: expected {expected} fields, found {found} "
                        f"('{_show(_line_text(path, line))}'); fix or remove the line") from None
    blank = (raw == "").all(axis=1).to_numpy()
    lines = np.flatnonzero(~blank) + layout.skip + 1
    raw = raw[~blank].reset_index(drop=True)
    if len(raw) == 0:
        raise _no_rows(path, layout)
    # Short lines come back padded with empty fields: tell them apart from empty values.
    used = sorted(set(roles.values()))
    empty = (raw.iloc[:, used] == "").any(axis=1).to_numpy()
    if empty.any():
        line = int(lines[np.argmax(empty)])
        text = _line_text(path, line)
        found = len(_split(text, layout.sep))
        if found != layout.ncols:
            raise DataError(f"{path.name} line {line}: expected {layout.ncols} fields, found "
                            f"{found} ('{_show(text)}'); fix or remove the line")
    return standardize(raw, roles, lambda i: f"{path.name} line {lines[i]}")


def _no_rows(path: Path, layout: _Layout) -> DataError:
    if layout.header is not None:
        return DataError(f"'{path}' has a header line but no ratings; add ratings below it")
    return DataError(f"ratings file '{path}' is empty; point to a file with ratings")


def _line_text(path: Path, line: int) -> str:
    """The text of 1-based ``line`` (read only on errors)."""
    with path.open("r", encoding="utf-8", errors="replace", newline="") as fh:
        return next(itertools.islice(fh, line - 1, line), "").rstrip("\r\n")


def _show(text: str, width: int = 80) -> str:
    """A line for a one-line message: tabs visible, long lines shortened."""
    text = text.replace("\t", "\\t")
    return text if len(text) <= width else text[:width - 3] + "..."
