"""Read a ratings file (MovieLens, CSV/TSV, Parquet) or a DataFrame into the standard table.

Clean files take a fast typed read (pyarrow's multi-threaded CSV parser where available).
Anything the fast read rejects or gets wrong is read again as plain text, slowly, to name the
first bad line exactly (1-based line numbers of the file, header and blank lines included).

Files are recognised by their first bytes, not their names: gzip, bz2, xz and zip files (the
compressions pandas reads) are decompressed in memory and read like the text inside them, a
UTF-16 text (Excel's "Unicode text") is re-encoded as UTF-8, and a Parquet file is read as
Parquet whatever its suffix. pandas would infer compression from the suffix only; we look at
the content so that a misnamed file is read, or named, as what it is.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import itertools
import lzma
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reclight.data.schema import (
    FLOAT32_MAX,
    KNOWN_NAMES,
    Label,
    Locate,
    canonical,
    has_nul,
    normalise_ids,
    parse_columns,
    resolve_columns,
    standardize,
)
from reclight.errors import DataError

SNIFF_BYTES = 1 << 16
# A line of ratings is a few dozen bytes; a first line longer than this means a file without
# line breaks (binary data, or every value on one line), which no separator sniffing can read.
MAX_LINE_BYTES = 1 << 20
# First bytes of the compressions pandas reads (and zstd, which needs an extra package).
COMPRESSIONS = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"),
                (b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"), (b"\x28\xb5\x2f\xfd", "zstd"))
COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".zip", ".zst")
PARQUET_MAGIC = b"PAR1"
SEPARATORS = ("::", "\t", ",", ";", "|")  # tried in this order on the first line
WHITESPACE = r"\s+"
# '::' is two characters, which pandas' fast parsers cannot split on: we rewrite it in memory
# to this one (the ASCII unit separator, which never occurs in rating files).
UNIT_SEP = "\x1f"
SEP_ALIASES = {"\\t": "\t", "tab": "\t", "space": WHITESPACE, "whitespace": WHITESPACE}
PARQUET_SUFFIXES = (".parquet", ".pq")
_C_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


@dataclass
class _Text:
    """A text file to read: ``path`` names it in messages, ``name`` is the name that says its
    format (``ratings.csv`` for ``ratings.csv.gz``), ``data`` holds its decoded bytes when it
    was decompressed or re-encoded (None: read the file itself)."""

    path: Path
    name: str
    data: bytes | None = None

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix

    def head(self, size: int) -> tuple[bytes, bool]:
        """The first ``size`` bytes and whether they are the whole file."""
        if self.data is not None:
            return self.data[:size], len(self.data) <= size
        with self.path.open("rb") as fh:
            head = fh.read(size)
            return head, not fh.read(1)

    def source(self, pandas_sep: str) -> Path | io.BytesIO:
        """What the parsers read: the file, or its bytes (decoded, '::' rewritten)."""
        if pandas_sep != UNIT_SEP:
            return self.path if self.data is None else io.BytesIO(self.data)
        data = self.path.read_bytes() if self.data is None else self.data
        return io.BytesIO(data.replace(b"::", UNIT_SEP.encode()))


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
    with path.open("rb") as fh:
        magic = fh.read(8)
    if path.suffix.lower() in PARQUET_SUFFIXES or magic.startswith(PARQUET_MAGIC):
        return _read_parquet(path, spec)
    text = _open_text(path, magic)
    if text.data is not None and text.data.startswith(PARQUET_MAGIC):
        return _read_parquet(path, spec, io.BytesIO(text.data))
    return _read_text(text, spec, sep)


# ---- what the bytes are: compressed, UTF-16 or plain text ------------------------------------
def _open_text(path: Path, magic: bytes) -> _Text:
    """The file as text to parse: decompressed (gzip, bz2, xz, zip) or re-encoded (UTF-16)."""
    kind = next((name for start, name in COMPRESSIONS if magic.startswith(start)), None)
    name = path.name
    if kind is None:
        if magic.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its byte-order mark
            return _Text(path, name, _utf16_to_utf8(path))
        return _Text(path, name)
    if path.suffix.lower() in COMPRESSED_SUFFIXES:
        name = path.stem  # ratings.csv.gz holds ratings.csv
    if kind == "zstd":
        raise DataError(f"'{path}' is zstd-compressed, which reclight does not read; decompress "
                        f"it first (zstd -d '{path}') or recompress it with gzip")
    try:
        if kind == "zip":
            name, data = _unzip(path)
        else:
            opener = {"gzip": gzip.decompress, "bz2": bz2.decompress, "xz": lzma.decompress}
            data = opener[kind](path.read_bytes())
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"'{path}' is {kind}-compressed but cannot be decompressed ({reason}); "
                        "check that the file is complete (download or copy it again)") from None
    if not data.strip():
        raise DataError(f"'{path}' is {kind}-compressed and holds no ratings once decompressed; "
                        "point to a file with ratings")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        data = _decode_utf16(path, data)
    return _Text(path, name, data)


def _unzip(path: Path) -> tuple[str, bytes]:
    """The one file inside a zip archive (as pandas reads a zip: exactly one member)."""
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist()
                   if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
        if len(members) != 1:
            listed = ", ".join(m.filename for m in members[:5]) or "no files"
            raise DataError(f"'{path}' is a zip archive of {len(members)} files ({listed}); "
                            "a zipped ratings file must hold exactly one file: unzip it and "
                            "pass the ratings file inside")
        return Path(members[0].filename).name, archive.read(members[0])


def _utf16_to_utf8(path: Path) -> bytes:
    return _decode_utf16(path, path.read_bytes())


def _decode_utf16(path: Path, data: bytes) -> bytes:
    try:
        return data.decode("utf-16").encode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"'{path}' starts like UTF-16 text but is not ({exc.reason} at byte "
                        f"{exc.start}); save it as UTF-8 text") from None


# ---- DataFrames and Parquet ------------------------------------------------------------------
def read_frame(frame: pd.DataFrame, columns: str | None = None) -> pd.DataFrame:
    """A user's DataFrame in the standard columns; ``columns`` as for :func:`read_ratings`."""
    return _from_frame(frame, parse_columns(columns), what="the DataFrame",
                       where="the DataFrame", fix="pass a DataFrame with ratings",
                       locate=lambda i: f"DataFrame row {frame.index[i]!r}")


def _read_parquet(path: Path, spec: dict[str, Label],
                  data: io.BytesIO | None = None) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path if data is None else data)
    except ImportError as exc:
        raise DataError(f"reading the Parquet file '{path.name}' needs pyarrow, which is not "
                        "installed; run: pip install 'reclight[parquet]' (or pyarrow)") from None
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
        try:
            return next(csv.reader([line], delimiter=sep), [])
        except csv.Error:  # a field beyond the csv module's size limit: split it plainly
            return line.split(sep)
    return line.split(sep)


def _is_number(text: str) -> bool:
    try:
        float(text.strip().strip('"'))
    except ValueError:
        return False
    return True


def _first_lines(text: _Text, what: str = "ratings file",
                 unit: str = "rating") -> tuple[bytes, bool]:
    """The file's first bytes, enough to hold its first non-blank line entire."""
    size = SNIFF_BYTES
    while True:
        head, complete = text.head(size)
        body = head.lstrip()
        if complete or b"\n" in body or b"\r" in body:
            return head, complete
        if size >= MAX_LINE_BYTES:
            path = text.path
            raise DataError(f"{what} '{path}' has no line break in its first "
                            f"{MAX_LINE_BYTES >> 20} MiB: a {what} holds one {unit} per line, "
                            "so this is binary data or values on one line; check the file (or "
                            "its line endings)")
        size *= 4


def _sniff(text: _Text, sep: str | None, spec: dict[str, Label]) -> _Layout:
    path = text.path
    head, complete = _first_lines(text)
    lines = head.decode("utf-8-sig", errors="replace").splitlines()
    if not complete and lines:
        lines = lines[:-1]  # the last line may be cut in the middle
    numbered = [(n, line) for n, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise DataError(f"ratings file '{path}' is empty (only blank lines); "
                        "point to a file with ratings")
    first_no, first = numbered[0]
    name = text.name.lower()
    sep = _normalise_sep(sep)
    if sep is None:
        # MovieLens files are tab-separated; a user's fold files (X.base/X.test) are sniffed.
        if name == "u.data" or (text.suffix in (".base", ".test") and "\t" in first):
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
    header = _has_header(name, text.suffix, fields, second, spec)
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
def _read_text(text: _Text, spec: dict[str, Label], sep: str | None) -> pd.DataFrame:
    layout = _sniff(text, sep, spec)
    numeric_4th = len(layout.first) >= 4 and _is_number(layout.first[3])
    roles = resolve_columns(spec, layout.header, layout.ncols, f"'{text.path.name}'",
                            numeric_4th)
    fast = _read_fast(text, layout, roles)
    if fast is not None:
        return fast
    return _read_checked(text, layout, roles)


def _read_fast(text: _Text, layout: _Layout, roles: dict[str, int]) -> pd.DataFrame | None:
    """Typed read of a clean file; None when anything looks wrong (then the checked read
    finds and names the problem)."""
    try:
        raw = _read_arrow(text, layout, roles)
        if raw is None:
            dtype: dict[int, str] = {roles["user"]: "str", roles["item"]: "str"}
            if "rating" in roles:
                dtype[roles["rating"]] = "float64"
            if "timestamp" in roles:
                dtype[roles["timestamp"]] = "int64"
            raw = pd.read_csv(text.source(layout.pandas_sep), sep=layout.pandas_sep, header=None,
                              skiprows=layout.skip, dtype=dtype, engine="c", compression=None)
    except (ValueError, TypeError, OverflowError, OSError, pd.errors.EmptyDataError):
        return None  # pyarrow.ArrowInvalid and pandas' ParserError are ValueErrors
    if len(raw) == 0 or not set(roles.values()) <= set(raw.columns):  # a short first line
        return None
    cols = {role: raw[pos] for role, pos in roles.items()}
    ids = {}
    for role in ("user", "item"):
        ids[role] = normalise_ids(cols[role].astype("str").reset_index(drop=True))
        if bool((ids[role].isna() | (ids[role] == "")).any()) or has_nul(ids[role]):
            return None
    out = pd.DataFrame(ids)
    if "rating" in roles:
        rating = cols["rating"].to_numpy(dtype=np.float64, na_value=np.nan)
        if not (np.abs(rating) <= FLOAT32_MAX).all():  # also False for NaN: checked read names it
            return None
        out["rating"] = rating.astype(np.float32)
    if "timestamp" in roles:
        if bool(cols["timestamp"].isna().any()):
            return None
        out["timestamp"] = cols["timestamp"].to_numpy(dtype=np.int64)
    return out


def _read_arrow(text: _Text, layout: _Layout, roles: dict[str, int]) -> pd.DataFrame | None:
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
    source = text.source(layout.pandas_sep)
    # A stream, not a path: pyarrow would guess a compression from the suffix; we read what
    # the bytes are (decompressed already when they were compressed).
    with (pa.BufferReader(source.getvalue()) if isinstance(source, io.BytesIO)
          else pa.input_stream(str(source), compression=None)) as stream:
        table = pacsv.read_csv(
            stream,
            read_options=pacsv.ReadOptions(skip_rows=layout.skip, column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=layout.pandas_sep),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types)))
    return pd.DataFrame({names.index(name): pd.array(table.column(name), dtype=(
        "str" if pa.types.is_string(table.column(name).type) else None)) for name in types})


def _read_checked(text: _Text, layout: _Layout, roles: dict[str, int]) -> pd.DataFrame:
    """Slow read as plain text that names the first bad line, or returns the table."""
    path = text.path
    sep, engine = layout.pandas_sep, "c"
    if len(sep) > 1 and sep != WHITESPACE:  # another multi-character separator, e.g. "||"
        sep, engine = re.escape(sep), "python"
    # Fixed names make every line count against the expected width, including a short first
    # line, so the parser's error names the truly bad line.
    kwargs: dict[str, object] = dict(sep=sep, header=None, names=list(range(layout.ncols)),
                                     skiprows=layout.skip, dtype=str, keep_default_na=False,
                                     na_filter=False, skip_blank_lines=False, engine=engine,
                                     compression=None)
    try:
        try:
            raw = pd.read_csv(text.source(layout.pandas_sep), **kwargs)  # type: ignore[arg-type]
        except UnicodeDecodeError:  # not UTF-8: Latin-1 decodes every byte, ids stay distinct
            raw = pd.read_csv(text.source(layout.pandas_sep), encoding="latin-1",
                              **kwargs)  # type: ignore[arg-type]
    except pd.errors.EmptyDataError:
        raise _no_rows(path, layout) from None
    except pd.errors.ParserError as exc:
        match = _C_ERROR.search(str(exc))
        if match is None:
            raise DataError(f"cannot read '{path}': {str(exc).strip().splitlines()[-1]}") from None
        expected, line, found = (int(g) for g in match.groups())
        raise DataError(f"{path.name} line {line}: expected {expected} fields, found {found} "
                        f"('{_show(_line_text(text, line))}'); fix or remove the line") from None
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
        shown = _line_text(text, line)
        found = len(_split(shown, layout.sep))
        if found != layout.ncols:
            raise DataError(f"{path.name} line {line}: expected {layout.ncols} fields, found "
                            f"{found} ('{_show(shown)}'); fix or remove the line")
    return standardize(raw, roles, lambda i: f"{path.name} line {lines[i]}")


def _no_rows(path: Path, layout: _Layout) -> DataError:
    if layout.header is not None:
        return DataError(f"'{path}' has a header line but no ratings; add ratings below it")
    return DataError(f"ratings file '{path}' is empty; point to a file with ratings")


def _line_text(text: _Text, line: int) -> str:
    """The text of 1-based ``line`` (read only on errors)."""
    if text.data is not None:
        lines = io.StringIO(text.data.decode("utf-8", errors="replace"), newline="")
        return next(itertools.islice(lines, line - 1, line), "").rstrip("\r\n")
    with text.path.open("r", encoding="utf-8", errors="replace", newline="") as fh:
        return next(itertools.islice(fh, line - 1, line), "").rstrip("\r\n")


def _show(text: str, width: int = 80) -> str:
    """A line for a one-line message: tabs visible, long lines shortened."""
    text = text.replace("\t", "\\t")
    return text if len(text) <= width else text[:width - 3] + "..."


# ---- pairs of ids (the input of `reclight predict`) ------------------------------------------
PAIR_SEPARATORS = ("::", "\t", ",", ";", "|")
PAIR_USER_NAMES = frozenset({"u", "users", *KNOWN_NAMES["user"]})
PAIR_ITEM_NAMES = frozenset({"i", "items", *KNOWN_NAMES["item"]})


def read_pairs(path: str | Path) -> pd.DataFrame:
    """(user, item) raw id pairs from a CSV/TSV (compressed as :func:`read_ratings` reads),
    with or without a header, ids normalised as training normalises them; extra columns are
    kept (as text). The first line is a header when its first two fields name the user and
    item columns (``user,item``, ``userId,movieId``, ``u,i``, ...) or when neither is a number
    but both are on the next line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"input file '{path}' does not exist; pass a CSV of user,item pairs")
    if path.stat().st_size == 0:
        raise DataError(f"input file '{path}' is empty; it needs one user,item pair per line")
    with path.open("rb") as fh:
        magic = fh.read(8)
    text = _open_text(path, magic)
    head, complete = _first_lines(text, "pairs file", "user,item pair")
    lines = head.decode("utf-8-sig", errors="replace").splitlines()
    lines = lines if complete else lines[:-1]
    numbered = [line for line in lines if line.strip()]
    if not numbered:
        raise DataError(f"input file '{path}' has only blank lines; it needs one user,item pair "
                        "per line")
    first = numbered[0]
    sep = next((s for s in PAIR_SEPARATORS if s in first), None)
    if sep is None and len(first.split()) > 1:
        sep = WHITESPACE
    if sep is None:
        raise DataError(f"'{path}' has one column ('{_show(first, 40)}'); it needs user and item "
                        "columns separated by ',' or a tab")
    raw = _read_id_table(text, sep)
    blank = (raw == "").all(axis=1).to_numpy()
    line_of = np.flatnonzero(~blank) + 1
    raw = raw[~blank].reset_index(drop=True)
    if raw.shape[1] < 2:
        raise DataError(f"'{path}' has {raw.shape[1]} column; it needs user and item columns")
    second = raw.iloc[1, :2].tolist() if len(raw) > 1 else None
    if _pairs_header(raw.iloc[0, :2].tolist(), second):
        header = [str(v).strip() for v in raw.iloc[0]]
        raw, line_of = raw.iloc[1:].reset_index(drop=True), line_of[1:]
    else:
        header = ["user", "item"] + [f"col{i}" for i in range(2, raw.shape[1])]
    if len(raw) == 0:
        raise DataError(f"'{path}' has a header but no pairs; add user,item pairs below it")
    raw.columns = _unique_names(["user", "item"] + header[2:])
    for role in ("user", "item"):
        raw[role] = normalise_ids(raw[role].astype("str"))
        bad = (raw[role] == "").to_numpy()
        if bad.any():
            line = int(line_of[np.argmax(bad)])
            raise DataError(f"'{path}' line {line}: missing user or item id; fix or remove the "
                            "line")
        if has_nul(raw[role]):
            line = int(line_of[np.argmax(raw[role].str.contains("\x00", regex=False))])
            raise DataError(f"'{path}' line {line}: the {role} id holds a NUL byte (binary data, "
                            "not text); fix or remove the line")
    return raw


def _read_id_table(text: _Text, sep: str) -> pd.DataFrame:
    """Every line as text fields (blank lines as rows of empty fields, for line numbers)."""
    pandas_sep, engine = (UNIT_SEP, "c") if sep == "::" else (sep, "c")
    kwargs: dict[str, object] = dict(sep=pandas_sep, header=None, dtype=str, engine=engine,
                                     keep_default_na=False, na_filter=False,
                                     skip_blank_lines=False, compression=None)
    path = text.path
    try:
        try:
            raw = pd.read_csv(text.source(pandas_sep), **kwargs)  # type: ignore[arg-type]
        except UnicodeDecodeError:  # not UTF-8: Latin-1 decodes every byte
            raw = pd.read_csv(text.source(pandas_sep), encoding="latin-1",
                              **kwargs)  # type: ignore[arg-type]
    except pd.errors.EmptyDataError:
        raise DataError(f"input file '{path}' has no pairs; it needs one user,item pair per "
                        "line") from None
    except (ValueError, csv.Error) as exc:  # pandas' ParserError is a ValueError
        match = _C_ERROR.search(str(exc))
        if match is None:
            reason = " ".join(str(exc).split())[:120]
            raise DataError(f"cannot read '{path}' as CSV ({reason}); check the file") from None
        expected, line, found = (int(g) for g in match.groups())
        raise DataError(f"'{path}' line {line}: expected {expected} fields, found {found} "
                        f"('{_show(_line_text(text, line))}'); fix or remove the line") from None
    return raw.fillna("")


def _pairs_header(first: list[object], second: list[object] | None) -> bool:
    names = [canonical(v) for v in first]
    if names[0] in PAIR_USER_NAMES and names[1] in PAIR_ITEM_NAMES:
        return True
    if any(_is_number(str(v)) for v in first) or second is None:
        return False
    return all(_is_number(str(v)) for v in second)


def _unique_names(names: list[str]) -> list[str]:
    """Column names made unique (a repeated name gets a suffix), so no column is lost."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        label = name or "col"
        while label in seen:
            seen[name] += 1
            label = f"{name or 'col'}_{seen[name]}"
        seen.setdefault(label, 0)
        out.append(label)
    return out
