# Generated from notebooks/lib/validation.ipynb: edit the notebook, not this file.

"""Checks on interaction tables before any work: each failure names file, row and column."""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from shoprec.errors import EXIT_BAD_INPUT, ShoprecError

INTERACTION_COLUMNS = ("user_id", "item_id", "weight", "timestamp")
ID_COLUMNS = ("user_id", "item_id")
EVENT_KEY = ("user_id", "item_id", "timestamp")
RATING_KEY = ("user_id", "item_id")
ISO_HINT = "expected seconds since the Unix epoch or an ISO 8601 date-time (2024-05-01T12:30:00)"
ID_MAX = int(np.iinfo(np.int64).max)
"""The largest id: ids are int64 everywhere (arrays, artifacts, the service)."""
ID_DIGITS = len(str(ID_MAX))
FLOAT_EXACT = 2**53
"""Above this, float64 cannot tell neighbouring whole numbers apart."""


class DataValidationError(ShoprecError, ValueError):
    """Input data unfit for use: which file, data row (from 1) and column, and what is wrong."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        row: int | None = None,
        column: str | tuple[str, ...] | None = None,
        header_lines: int = 0,
    ) -> None:
        self.source, self.problem, self.row, self.column = source, problem, row, column
        where = [source]
        if row is not None:
            where.append(f"row {row}" + (f" (line {row + header_lines})" if header_lines else ""))
        if isinstance(column, str):
            where.append(f"column {column!r}")
        elif column:
            where.append(f"columns {', '.join(map(repr, column))}")
        super().__init__(f"{', '.join(where)}: {problem}")


def resolve_columns(columns: Mapping[str, str] | None, available: Sequence[str]) -> dict[str, str]:
    """The source column for each canonical name that the table provides (`weight` may be absent).

    Raises ValueError when `columns` maps a name that is not one of INTERACTION_COLUMNS.
    """
    given = dict(columns or {})
    unknown = sorted(set(given) - set(INTERACTION_COLUMNS))
    if unknown:
        raise ValueError(
            f"columns: unknown name(s) {unknown}; map any of {list(INTERACTION_COLUMNS)} "
            "to the names in the data, e.g. {'user_id': 'customer', 'item_id': 'sku'}"
        )
    mapping = {name: given.get(name, name) for name in INTERACTION_COLUMNS}
    if "weight" not in given and "weight" not in available:
        del mapping["weight"]
    return mapping


def _first(mask: pd.Series) -> int | None:
    """The 1-based row of the first True in `mask`, or None."""
    hits = np.flatnonzero(mask.to_numpy(dtype=bool))
    return int(hits[0]) + 1 if len(hits) else None


EXCERPT_CHARS = 12
"""At most this many characters of a value from the data appear, masked, in a message."""


def _masked(char: str) -> str:
    if char.isascii() and char.isdigit():
        return "9"
    if char.isascii() and char.isalpha():
        return "A" if char.isupper() else "a"
    return char if char.isascii() and char.isprintable() else "?"


def _shown(value: object) -> str:
    """A short, masked excerpt of a value from the data: its shape, never its content.

    Messages are kept in run records, executed notebooks and the tracking store, and the data
    may be anything the user could read: ASCII letters show as `a`/`A`, digits as `9`, other
    ASCII punctuation as itself, anything else as `?`; at most EXCERPT_CHARS characters.
    """
    if isinstance(value, np.generic):
        value = value.item()
    text = value if isinstance(value, str) else repr(value)
    masked = "".join(map(_masked, text[:EXCERPT_CHARS]))
    if len(text) > EXCERPT_CHARS:
        return f"'{masked}...' ({len(text)} characters)"
    return f"'{masked}'"


def columns_found(columns: Sequence[object]) -> str:
    """The columns a table has, for a message: how many, and masked excerpts of the first few
    names (a file's header line is data too)."""
    names = [str(name) for name in columns]
    shown = ", ".join(_shown(name) for name in names[:4]) + (", ..." if len(names) > 4 else "")
    return f"found {len(names)} column(s): {shown}"


def _numbers(values: pd.Series, fail, what: str) -> pd.Series:
    """`values` as numbers; fail at the first missing or non-numeric one."""
    row = _first(values.isna())
    if row is not None:
        fail("missing value (empty or NaN)", row)
    numbers = pd.to_numeric(values, errors="coerce")
    row = _first(numbers.isna())
    if row is not None:
        fail(f"{_shown(values.iloc[row - 1])} is not a number; expected {what}", row)
    return numbers


def _id_problem(value: object) -> str:
    """Why `value` is not an id: a whole number from 0 to ID_MAX, read exactly."""
    if isinstance(value, np.generic):
        value = value.item()
    text = value.strip() if isinstance(value, str) else value
    try:
        number = float(text)
    except (TypeError, ValueError):
        return f"{_shown(value)} is not a number; expected a whole number >= 0"
    if number < 0:
        return f"{_shown(value)} is negative; ids are whole numbers >= 0"
    if not np.isfinite(number) or number % 1:
        return f"{_shown(value)} is not a whole number; ids are whole numbers >= 0"
    if isinstance(value, float | np.floating):
        return (
            f"{_shown(value)} is a floating-point number above 2**53, where different ids share "
            "one value; store ids as integers or text"
        )
    if isinstance(value, int | np.integer) or number > ID_MAX:
        return f"{_shown(value)} is outside the 64-bit integer range (ids 0 to {ID_MAX})"
    return f"{_shown(value)} is not written in digits 0-9; ids are read exactly, as written"


def _as_text(value: object) -> str | None:
    """An id value as the digits it stands for exactly; None when it is not one."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and value % 1 == 0 and 0 <= value <= FLOAT_EXACT:
        return str(int(value))
    return None


def _ids(values: pd.Series, fail) -> pd.Series:
    """Whole numbers 0..ID_MAX, read exactly from integers or digit text, never through float.

    A float column (Parquet, SQL) is accepted only where each value is whole and at most 2**53,
    so that no two ids can share one float.
    """
    row = _first(values.isna())
    if row is not None:
        fail("missing value (empty or NaN)", row)
    if pd.api.types.is_bool_dtype(values.dtype):
        fail(f"{_shown(values.iloc[0])} is true/false; expected a whole number >= 0", 1)
    if pd.api.types.is_integer_dtype(values.dtype):
        unsigned = pd.api.types.is_unsigned_integer_dtype(values.dtype)
        numbers = values.to_numpy(dtype=np.uint64 if unsigned else np.int64)
        row = _first(pd.Series((numbers < 0) | (numbers > ID_MAX)))
        if row is not None:
            fail(_id_problem(values.iloc[row - 1]), row)
        return pd.Series(numbers.astype(np.int64))
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(numbers) | (numbers % 1 != 0) | (numbers < 0) | (numbers > FLOAT_EXACT)
        row = _first(pd.Series(bad))
        if row is not None:
            fail(_id_problem(values.iloc[row - 1]), row)
        return pd.Series(numbers.astype(np.int64))
    text = values.map(_as_text)
    row = _first(~text.str.fullmatch(r"[0-9]+").fillna(False).astype(bool))
    if row is not None:
        fail(_id_problem(values.iloc[row - 1]), row)
    digits = text.str.lstrip("0").replace("", "0")
    length = digits.str.len()
    row = _first((length > ID_DIGITS) | ((length == ID_DIGITS) & (digits > str(ID_MAX))))
    if row is not None:
        fail(_id_problem(values.iloc[row - 1]), row)
    return pd.Series(digits.to_numpy(dtype=object).astype(np.int64))


def _weights(values: pd.Series, fail) -> pd.Series:
    numbers = _numbers(values, fail, "a finite number >= 0").astype(np.float64)
    row = _first(~np.isfinite(numbers) | (numbers < 0))
    if row is not None:
        fail(f"{_shown(values.iloc[row - 1])}: weights must be finite and >= 0", row)
    return numbers


def _timestamps(values: pd.Series, fail) -> pd.Series:
    """Seconds since the Unix epoch; naive date-times are taken as UTC."""
    row = _first(values.isna())
    if row is not None:
        fail(f"missing value (empty or NaN); {ISO_HINT}", row)
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
    elif pd.to_numeric(values.iloc[:1], errors="coerce").notna().all():
        seconds = pd.to_numeric(values, errors="coerce")
        row = _first(seconds.isna())
        if row is not None:
            fail(
                f"cannot parse {_shown(values.iloc[row - 1])} as a timestamp; row 1 holds seconds "
                "since the Unix epoch, so every row must",
                row,
            )
        return np.floor(seconds).astype(np.int64)
    else:
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
        row = _first(parsed.isna())
        if row is not None:
            fail(f"cannot parse {_shown(values.iloc[row - 1])} as a timestamp; {ISO_HINT}", row)
    return (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


def _column_checker(source: str, column: str, header_lines: int):
    def fail(problem: str, row: int | None = None):
        raise DataValidationError(
            source, problem, row=row, column=column, header_lines=header_lines
        )

    return fail


def _check_duplicates(
    table: pd.DataFrame, frame: pd.DataFrame, key, mapping, source: str, header_lines: int
) -> None:
    repeated = _first(table.duplicated(list(key)))
    if repeated is None:
        return
    same = (table[list(key)] == table.iloc[repeated - 1][list(key)]).all(axis=1)
    names = tuple(mapping[name] for name in key)
    values = ", ".join(f"{name}={_shown(frame[name].iloc[repeated - 1])}" for name in names)
    raise DataValidationError(
        source,
        f"same {' + '.join(names)} as row {_first(same)} ({values}); each may occur once",
        row=repeated,
        column=names,
        header_lines=header_lines,
    )


def _check_varies(table: pd.DataFrame, mapping: dict[str, str], source: str) -> None:
    for name in ID_COLUMNS:
        if table[name].nunique() == 1:
            raise DataValidationError(
                source,
                f"holds one value ({_shown(table[name].iloc[0])}) in all {len(table)} rows; is it "
                f"really the {name} column? Recommending needs several users and items",
                column=mapping[name],
            )


def validate_interactions(
    frame: pd.DataFrame,
    source: str,
    *,
    columns: Mapping[str, str] | None = None,
    key: Sequence[str] = EVENT_KEY,
    header_lines: int = 0,
) -> pd.DataFrame:
    """The rows of `frame` as a canonical interaction table, or DataValidationError.

    `source` names the file or query in messages; `columns` maps canonical names to the frame's;
    rows are counted from 1 in frame order, and `header_lines` (lines before the first data row)
    turns a row into a line number for the message.
    """
    if frame.empty:
        raise DataValidationError(source, "no data rows: the table is empty")
    mapping = resolve_columns(columns, list(frame.columns))
    missing = [column for column in mapping.values() if column not in frame.columns]
    if missing:
        raise DataValidationError(
            source,
            f"missing column(s) {missing}; {columns_found(frame.columns)} "
            "(pass columns={canonical: name in the data} if they are named differently)",
        )
    frame = frame.reset_index(drop=True)
    parse = {"user_id": _ids, "item_id": _ids, "weight": _weights, "timestamp": _timestamps}
    table = pd.DataFrame(
        {
            name: parse[name](frame[column], _column_checker(source, column, header_lines))
            for name, column in mapping.items()
        }
    )
    if "weight" not in table:
        table["weight"] = 1.0
    table = table[list(INTERACTION_COLUMNS)]
    _check_duplicates(table, frame, key, mapping, source, header_lines)
    _check_varies(table, mapping, source)
    return table


def validate_item_ids(
    frame: pd.DataFrame, source: str, column: str, *, header_lines: int = 0
) -> pd.Series:
    """The whole, non-negative, unique item ids in `frame[column]`, or DataValidationError."""
    if frame.empty:
        raise DataValidationError(source, "no data rows: the table is empty")
    if column not in frame.columns:
        raise DataValidationError(
            source, f"missing column {column!r}; {columns_found(frame.columns)}"
        )
    fail = _column_checker(source, column, header_lines)
    ids = _ids(frame[column].reset_index(drop=True), fail)
    repeated = _first(ids.duplicated())
    if repeated is not None:
        fail(f"duplicate item id {_shown(ids.iloc[repeated - 1])}: each is listed once", repeated)
    return ids
