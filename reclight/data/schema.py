"""The standard ratings table and the column mapping that produces it.

Every source (file, DataFrame, synthetic) ends up as one DataFrame with the columns
``user`` and ``item`` (str ids), ``rating`` (float32) for explicit ratings and, when known,
``timestamp`` (int64). An interaction log without ratings (implicit feedback: clicks, plays,
purchases) has no ``rating`` column at all; :func:`reclight.data.prepare.prepare` then counts
each interaction as rating 1.0. A log is implicit when no rating column is mapped: a
``columns`` mapping without ``rating``, a header naming user and item but no rating, or two
headerless columns. Three or more headerless columns always mean user, item, rating[,
timestamp], so a non-numeric third column is a bad rating, not an implicit log.

Ids are strings everywhere so that raw ids round-trip identically from a file through a
checkpoint to a predictions CSV ("007" stays "007", 42 becomes "42"). Surrounding spaces and
tabs are not part of an id: :func:`normalise_ids` strips them wherever ids enter (ratings
files, DataFrames, ``predict``'s pairs, ``recommend --users``, :class:`IdMap` lookups), so
"1 " in a training file and "1" on the command line are one user. An id holding a NUL byte is
rejected (it is binary data, not an id). Ids that are one number written two ways ("1" and
"1.0") stay two ids, with a counted warning (:func:`same_number_ids`).

Ratings are float32 and timestamps int64: a rating beyond float32 (3.4e38) or a timestamp
beyond int64 is rejected with its line, never stored as infinity or a wrapped number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from reclight.errors import DataError

ROLES = ("user", "item", "rating", "timestamp")
REQUIRED = ("user", "item")  # without a rating the data are implicit interactions
# Header names recognised without a --data.columns mapping (compared lower-cased, without
# spaces, dashes and underscores): MovieLens, Netflix, Amazon, BookCrossing, Surprise, ...
KNOWN_NAMES = {
    "user": ("userid", "user", "uid", "customerid", "reviewerid"),
    "item": ("movieid", "itemid", "item", "iid", "movie", "isbn", "asin", "productid"),
    "rating": ("rating", "ratings", "score", "stars", "bookrating", "overall"),
    "timestamp": ("timestamp", "time", "ts", "unixtime", "unixreviewtime", "date"),
}

Label = str | int
Locate = Callable[[int], str]
FLOAT32_MAX = float(np.finfo(np.float32).max)
INT64_LIMIT = 2.0 ** 63  # float64 timestamps at or beyond it do not fit int64
# Stripped around ids: ASCII whitespace only, one fixed set, so that pandas (pyarrow) and
# Python's str.strip agree exactly (Python's bare strip() also removes \x1c-\x1f and more).
ID_SPACE = " \t\r\n\v\f"


def canonical(name: object) -> str:
    """A header name reduced for matching: lower case, no quotes, spaces, '_' or '-'."""
    text = str(name).strip().strip('"').strip("'").lower()
    return "".join(ch for ch in text if ch not in " _-")


def ids_from_codes(codes: np.ndarray, n: int) -> pd.api.extensions.ExtensionArray:
    """String ids "1".."n" for integer codes 0..n-1, built by one vectorised take."""
    vocab = np.arange(1, n + 1).astype(str)
    try:
        import pyarrow as pa
    except ImportError:  # pyarrow is optional: fall back to an object take
        return pd.array(vocab.astype(object)[codes], dtype="str")
    return pd.array(pa.array(vocab).take(pa.array(codes)), dtype="str")


def ids_to_str(values: pd.Series | np.ndarray | Sequence[object]) -> pd.Series:
    """Raw ids as a pandas ``str`` Series; integral floats (1.0) become "1", not "1.0"."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_float_dtype(series.dtype):
        finite = series.dropna()
        if len(finite) and bool((finite == np.floor(finite)).all()):
            series = series.astype("Int64")
    if isinstance(series.dtype, pd.StringDtype) or series.dtype == "str":
        return normalise_ids(series.reset_index(drop=True))
    out = series.astype("str")
    # astype(str) turns missing values into NaN of the str dtype, which checks below report.
    return normalise_ids(out.reset_index(drop=True))


def normalise_id(raw: str) -> str:
    """One raw id as every reader stores it: without surrounding spaces and tabs."""
    return raw.strip(ID_SPACE)


def normalise_ids(ids: pd.Series) -> pd.Series:
    """A str Series of ids without surrounding spaces and tabs (see :func:`normalise_id`)."""
    return ids.str.strip(ID_SPACE)


def has_nul(ids: pd.Series) -> bool:
    """Whether any id holds a NUL byte."""
    return bool(ids.str.contains("\x00", regex=False).fillna(False).any())


def same_number_ids(uniques: np.ndarray | pd.Series) -> tuple[int, tuple[str, str] | None]:
    """How many of the distinct ids ``uniques`` spell a number that another id spells
    differently ("1" and "1.0", "7" and "07"), and one such pair for a message."""
    ids = pd.Series(np.asarray(uniques, dtype=object)).astype("str")
    numbers = pd.to_numeric(ids, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(numbers)
    if finite.sum() < 2:
        return 0, None
    values = pd.Series(numbers[finite])
    repeated = values.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return 0, None
    spelled = ids[finite].to_numpy()[repeated]
    first = values[repeated].iloc[0]
    pair = spelled[(values[repeated] == first).to_numpy()][:2]
    return int(repeated.sum()), (str(pair[0]), str(pair[1]))


def parse_columns(spec: str | None) -> dict[str, Label]:
    """Parse ``"user=userId,item=movieId,rating=stars"`` (names) or ``"user=0,item=1,rating=2"``
    (0-based positions) into a role -> column mapping."""
    if spec is None or not str(spec).strip():
        return {}
    mapping: dict[str, Label] = {}
    for part in str(spec).split(","):
        key, eq, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not eq or not value:
            raise DataError(f"columns: '{part.strip()}' is not role=column; write e.g. "
                            "'user=userId,item=movieId,rating=rating'")
        if key not in ROLES:
            raise DataError(f"columns: unknown role '{key}'; use {', '.join(ROLES)} "
                            "(e.g. 'user=userId,item=movieId,rating=rating')")
        mapping[key] = int(value) if value.isdigit() else value
    missing = [role for role in REQUIRED if role not in mapping]
    if missing:
        raise DataError(f"columns '{spec}' does not map {', '.join(missing)}; map user and item "
                        "(rating and timestamp are optional; without rating the data are "
                        "implicit), e.g. 'user=0,item=1,rating=2'")
    return mapping


def _find_name(name: str, header: Sequence[object], what: str) -> int:
    names = [str(h) for h in header]
    if name in names:
        return names.index(name)
    folded = [i for i, h in enumerate(names) if h.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    raise DataError(f"columns: no column '{name}' in {what}; available: {', '.join(names)}")


def resolve_columns(spec: dict[str, Label], header: Sequence[object] | None, ncols: int,
                    what: str, numeric_4th: bool = True) -> dict[str, int]:
    """Map each role to a 0-based column position.

    With a ``spec`` (from :func:`parse_columns`) names are looked up in ``header`` and
    positions checked against ``ncols``. Without one, recognised header names are used (user
    and item at least; no rating name means implicit data); a header with none of them, or no
    header at all, means the first columns in the order user, item, rating[, timestamp] (the
    4th only when it holds a number, ``numeric_4th``), or user, item for two columns. The
    result has no ``rating`` key for implicit data.
    """
    if spec:
        roles: dict[str, int] = {}
        for role, label in spec.items():
            if isinstance(label, int):
                if label >= ncols:
                    raise DataError(f"columns: position {label} for {role} is out of range; {what} "
                                    f"has {ncols} columns (0..{ncols - 1})")
                roles[role] = label
            elif header is None:
                raise DataError(f"columns: name '{label}' needs a header line but {what} has "
                                "none; map positions instead, e.g. 'user=0,item=1,rating=2'")
            else:
                roles[role] = _find_name(label, header, what)
        if "timestamp" not in roles and header is not None:
            found = _recognise(header).get("timestamp")
            if found is not None and found not in roles.values():
                roles["timestamp"] = found
        return roles
    if header is not None:
        found = _recognise(header)
        if all(role in found for role in REQUIRED):
            return found
        named = ("user", "item", "rating")
        if any(role in found for role in named):
            names = ", ".join(str(h) for h in header)
            missing = ", ".join(r for r in named if r not in found)
            raise DataError(f"cannot tell which columns of {what} hold {missing} "
                            f"(header: {names}); "
                            "pass columns like 'user=userId,item=movieId,rating=rating'")
    if ncols < 2:
        raise DataError(f"{what} has {ncols} column(s); interactions need user and item "
                        "columns (pass sep if the separator was not recognised)")
    if ncols == 2:
        return {"user": 0, "item": 1}
    roles = {"user": 0, "item": 1, "rating": 2}
    if ncols >= 4 and numeric_4th:
        roles["timestamp"] = 3
    return roles


def _recognise(header: Sequence[object]) -> dict[str, int]:
    found: dict[str, int] = {}
    names = [canonical(h) for h in header]
    for role, known in KNOWN_NAMES.items():
        for alias in known:  # aliases in order of preference: userId before uid
            if alias in names:
                found[role] = names.index(alias)
                break
    return found


def standardize(raw: pd.DataFrame, roles: dict[str, int], locate: Locate) -> pd.DataFrame:
    """Validate and convert the mapped columns of ``raw`` into the standard table.

    ``roles`` maps each role to a column position in ``raw`` (no ``rating`` for implicit
    data: the table then has no rating column); ``locate(i)`` names row ``i`` in messages
    ("u.data line 17", "row 3"). Raises DataError at the first missing id, non-numeric or
    missing rating, or bad timestamp.
    """
    out = pd.DataFrame({"user": ids_to_str(raw.iloc[:, roles["user"]]),
                        "item": ids_to_str(raw.iloc[:, roles["item"]])})
    for role in ("user", "item"):
        bad = out[role].isna() | (out[role] == "")
        if bool(bad.any()):
            raise DataError(f"{locate(_first(bad))}: {role} id is missing; fix or remove the line")
        if has_nul(out[role]):
            i = _first(out[role].str.contains("\x00", regex=False).fillna(False))
            shown = _clip(out[role].iloc[i])
            raise DataError(f"{locate(i)}: {role} id '{shown}' holds a NUL byte (binary data, "
                            "not text); fix or remove the line, or re-export the file as text")
    if "rating" in roles:
        out["rating"] = _ratings(raw.iloc[:, roles["rating"]], locate)
    if "timestamp" in roles:
        out["timestamp"] = _timestamps(raw.iloc[:, roles["timestamp"]], locate)
    return out


def _clip(value: object, width: int = 40) -> str:
    """A value for a one-line message: control characters visible, long values shortened."""
    text = str(value).encode("unicode_escape").decode("ascii")
    return text if len(text) <= width else text[:width - 3] + "..."


def _first(mask: pd.Series | np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def _ratings(col: pd.Series, locate: Locate) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col.dtype):
        raise DataError(f"{locate(0)}: rating column holds booleans; map a numeric column")
    if pd.api.types.is_numeric_dtype(col.dtype):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            i = _first(bad)
            raise DataError(f"{locate(i)}: rating is missing or not finite ({values[i]}); "
                            "fix or remove the line")
        return _float32(values, locate)
    text = col.astype("str")
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        i = _first(bad)
        value = text.iloc[i]
        if pd.isna(value) or not str(value).strip():
            raise DataError(f"{locate(i)}: rating is missing; fix or remove the line")
        raise DataError(f"{locate(i)}: rating '{_clip(value)}' is not a number; fix or remove "
                        "the line")
    return _float32(values, locate)


def _float32(values: np.ndarray, locate: Locate) -> np.ndarray:
    """float64 ratings as float32, rejecting any that float32 cannot hold (they would become
    infinity and make every loss infinite)."""
    huge = np.abs(values) > FLOAT32_MAX
    if huge.any():
        i = _first(huge)
        raise DataError(f"{locate(i)}: rating {values[i]:g} is beyond the float32 range "
                        f"(|rating| <= {FLOAT32_MAX:.3g}) that models train in; fix or remove "
                        "the line")
    return values.astype(np.float32)


def _timestamps(col: pd.Series, locate: Locate) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        values = _epoch_seconds(pd.to_datetime(col, utc=True))
    elif pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        if pd.api.types.is_integer_dtype(col.dtype) and not bool(col.isna().any()):
            return col.to_numpy(dtype=np.int64)
    else:
        text = col.astype("str")
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(values).all() and len(values):  # not numbers: try ISO dates once, in bulk
            values = _epoch_seconds(pd.to_datetime(text, errors="coerce", utc=True,
                                                   format="ISO8601"))
    bad = ~np.isfinite(values)
    if bad.any():
        i = _first(bad)
        value = col.iloc[i]
        if pd.isna(value) or not str(value).strip():
            raise DataError(f"{locate(i)}: timestamp is missing; fix or remove the line")
        raise DataError(f"{locate(i)}: timestamp '{_clip(value)}' is neither a number nor an ISO date; "
                        "fix the line or map no timestamp column")
    huge = np.abs(np.floor(values)) >= INT64_LIMIT
    if huge.any():
        i = _first(huge)
        raise DataError(f"{locate(i)}: timestamp {values[i]:g} is beyond the int64 range "
                        "(seconds since 1970 up to 9.2e18); fix the line or map no timestamp "
                        "column")
    return np.floor(values).astype(np.int64)


def _epoch_seconds(dates: pd.Series) -> np.ndarray:
    """Seconds since 1970 as float64 (NaN for NaT), whatever the datetime resolution."""
    seconds = (dates - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return seconds.to_numpy(dtype=np.float64, na_value=np.nan)
