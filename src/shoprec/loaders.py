# Generated from notebooks/lib/loaders.ipynb: edit the notebook, not this file.

"""Real interaction data: MovieLens (folder, zip, or download with checksum) and shop extracts."""

import csv
import gzip
import io
import os
import sqlite3
import tempfile
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pandas as pd
import sqlalchemy
import sqlparse
from sqlparse.tokens import Keyword

from shoprec.checksums import file_sha256
from shoprec.errors import EXIT_BAD_INPUT, ShoprecError
from shoprec.redact import DATABASE_PASSWORD_VARIABLE, MASK, redact_text
from shoprec.runs import project_dir
from shoprec.settings import get_settings
from shoprec.validation import (
    INTERACTION_COLUMNS,
    RATING_KEY,
    DataValidationError,
    columns_found,
    validate_interactions,
    validate_item_ids,
)

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
ITEM_COLUMNS = ("item_id", "title", "category", "genres")
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


@dataclass(frozen=True)
class MovieLensRelease:
    """One MovieLens release: where to get it and how its ratings and film files are laid out."""

    folder: str
    """Name of the release's folder, and of its zip without `.zip`."""
    url: str
    """The official zip."""
    sha256: str
    """Of the official zip."""
    ratings_file: str
    ratings_columns: tuple[str, ...]
    """The file's names for user, item, rating and timestamp, in file order."""
    movies_file: str
    movies_columns: tuple[str, ...]
    """The film file's columns: id, title, then genres (one `A|B` column or flag columns)."""
    ratings_separator: str
    movies_separator: str
    header: bool
    """Whether the files start with a header line naming their columns."""
    encoding: str


MOVIELENS = {
    "movielens-100k": MovieLensRelease(
        folder="ml-100k",
        url=f"{GROUPLENS}/ml-100k.zip",
        sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        ratings_file="u.data",
        ratings_columns=("user id", "item id", "rating", "timestamp"),
        movies_file="u.item",
        movies_columns=(
            "movie id",
            "movie title",
            "release date",
            "video release date",
            "IMDb URL",
            *ML100K_GENRES,
        ),  # fmt: skip
        ratings_separator="\t",
        movies_separator="|",
        header=False,
        encoding="latin-1",
    ),
    "movielens-1m": MovieLensRelease(
        folder="ml-1m",
        url=f"{GROUPLENS}/ml-1m.zip",
        sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        ratings_file="ratings.dat",
        ratings_columns=("UserID", "MovieID", "Rating", "Timestamp"),
        movies_file="movies.dat",
        movies_columns=("MovieID", "Title", "Genres"),
        ratings_separator="::",
        movies_separator="::",
        header=False,
        encoding="latin-1",
    ),
    "movielens-latest-small": MovieLensRelease(
        folder="ml-latest-small",
        url=f"{GROUPLENS}/ml-latest-small.zip",
        sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
        ratings_file="ratings.csv",
        ratings_columns=("userId", "movieId", "rating", "timestamp"),
        movies_file="movies.csv",
        movies_columns=("movieId", "title", "genres"),
        ratings_separator=",",
        movies_separator=",",
        header=True,
        encoding="utf-8",
    ),
}


class DataUnavailableError(ShoprecError, FileNotFoundError):
    """A dataset found nowhere locally that could not be downloaded either."""

    exit_code = EXIT_BAD_INPUT


class ChecksumError(ShoprecError, ValueError):
    """A file whose sha256 is not the one recorded for it."""

    exit_code = EXIT_BAD_INPUT


def _member(source: Path, filename: str) -> tuple[bytes, str] | None:
    """The bytes of `filename` in folder or zip `source` and a name for it; None if absent."""
    if not source.exists():
        raise DataUnavailableError(f"{source}: no such folder or zip")
    if source.is_dir():
        path = source / filename
        return (path.read_bytes(), str(path)) if path.is_file() else None
    try:
        with zipfile.ZipFile(source) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == filename]
            if not names:
                return None
            name = min(names, key=len)
            return archive.read(name), f"{source}:{name}"
    except (zipfile.BadZipFile, OSError) as error:
        raise DataValidationError(str(source), f"not a readable zip archive: {error}") from None


def _parse(
    data: bytes, source: str, release: MovieLensRelease, separator: str, columns: tuple[str, ...]
) -> pd.DataFrame:
    """A table of text fields from the raw bytes of one of the release's files."""
    if len(separator) > 1:
        data, separator = data.replace(separator.encode(), b"\t"), "\t"
    try:
        return pd.read_csv(
            io.BytesIO(data),
            sep=separator,
            encoding=release.encoding,
            dtype=str,
            skip_blank_lines=False,
            header=0 if release.header else None,
            names=None if release.header else list(columns),
            quoting=csv.QUOTE_MINIMAL if release.header else csv.QUOTE_NONE,
        )
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataValidationError(source, f"cannot parse the file: {error}") from None


def read_movielens_ratings(source: Path, name: str) -> pd.DataFrame:
    """The validated ratings of MovieLens release `name` held in folder or zip `source`.

    One row per rating: user_id, item_id, weight (the rating) and timestamp.
    """
    release = MOVIELENS[name]
    member = _member(Path(source), release.ratings_file)
    if member is None:
        raise DataValidationError(
            str(source), f"no {release.ratings_file} in it: is it the {release.folder} release?"
        )
    data, label = member
    frame = _parse(data, label, release, release.ratings_separator, release.ratings_columns)
    columns = dict(zip(INTERACTION_COLUMNS, release.ratings_columns, strict=True))
    return validate_interactions(
        frame, label, columns=columns, key=RATING_KEY, header_lines=int(release.header)
    )


def _genres_from_flags(flags: pd.DataFrame) -> pd.Series:
    names = np.array(flags.columns)
    return pd.Series(["|".join(names[row == "1"]) for row in flags.to_numpy()], index=flags.index)


def read_movielens_movies(source: Path, name: str) -> pd.DataFrame | None:
    """The films of MovieLens release `name` in folder or zip `source`; None without a film file.

    Columns: item_id, title, category (first genre) and genres (`A|B`).
    """
    release = MOVIELENS[name]
    member = _member(Path(source), release.movies_file)
    if member is None:
        return None
    data, label = member
    frame = _parse(data, label, release, release.movies_separator, release.movies_columns)
    item_id, title, *genre_columns = release.movies_columns
    ids = validate_item_ids(frame, label, item_id, header_lines=int(release.header))
    missing = [column for column in release.movies_columns if column not in frame.columns]
    if missing:
        raise DataValidationError(
            label, f"missing column(s) {missing}; {columns_found(frame.columns)}"
        )
    if len(genre_columns) > 1:
        genres = _genres_from_flags(frame[genre_columns])
    else:
        genres = frame[genre_columns[0]].fillna("")
    return pd.DataFrame(
        {
            "item_id": ids,
            "title": frame[title].fillna(""),
            "category": genres.str.split("|").str[0].replace("", "unknown"),
            "genres": genres,
        }
    )


def cache_dir() -> Path:
    """Where downloads are kept: $SHOPREC_CACHE_DIR, else ~/.cache/shoprec."""
    return get_settings().cache_dir


def movielens_cache_path(name: str) -> Path:
    """Where the download of MovieLens release `name` is kept."""
    return cache_dir() / "movielens" / f"{MOVIELENS[name].folder}.zip"


def movielens_candidates(name: str) -> list[Path]:
    """The local places MovieLens release `name` is looked for, in order (cache last)."""
    release = MOVIELENS[name]
    places = []
    if (folder := get_settings().movielens_dir) is not None:
        places += [folder / release.folder, folder / f"{release.folder}.zip", folder]
    shared = project_dir().parent / "shared" / "data"
    places += [shared / release.folder, shared / f"{release.folder}.zip"]
    return [*places, movielens_cache_path(name)]


def _holds_release(path: Path, release: MovieLensRelease) -> bool:
    return (path / release.ratings_file).is_file() if path.is_dir() else path.is_file()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise ChecksumError unless the file at `path` has sha256 `expected`."""
    actual = file_sha256(path)
    if actual != expected:
        raise ChecksumError(
            f"{path}: sha256 is {actual}, expected {expected}: the file is corrupt or not the "
            "official release; delete it so that it is downloaded again"
        )


def download(url: str, target: Path, sha256: str, *, timeout: float = 60.0) -> Path:
    """Fetch `url` to `target` if its sha256 is `sha256`; keep nothing otherwise.

    Raises ChecksumError on a mismatch and OSError (URLError) when the download fails.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as file, urllib.request.urlopen(url, timeout=timeout) as r:
            while chunk := r.read(1 << 20):
                file.write(chunk)
        actual = file_sha256(Path(partial))
        if actual != sha256:
            raise ChecksumError(
                f"{url}: the download has sha256 {actual}, expected {sha256}: corrupt, or not "
                "the official release; nothing was kept"
            )
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    return target


def locate_movielens(name: str, *, allow_download: bool = True) -> Path:
    """The folder or zip of MovieLens release `name`: found locally, else downloaded to the cache.

    Raises DataUnavailableError naming every place looked in when there is no copy and no
    download; ChecksumError when the cached or downloaded zip is not the official one.
    """
    release = MOVIELENS[name]
    cached = movielens_cache_path(name)
    candidates = movielens_candidates(name)
    for path in candidates:
        if _holds_release(path, release):
            if path == cached:
                verify_sha256(path, release.sha256)
            return path
    looked = "; ".join(str(path) for path in candidates)
    hint = (
        f"put the {release.folder} folder or {release.folder}.zip in one of those places, "
        "or set SHOPREC_MOVIELENS_DIR to the folder holding it"
    )
    if not allow_download:
        raise DataUnavailableError(f"{name}: no copy found (looked in: {looked}); {hint}")
    try:
        return download(release.url, cached, release.sha256)
    except URLError as error:
        raise DataUnavailableError(
            f"{name}: no copy found (looked in: {looked}) and the download from {release.url} "
            f"failed ({error.reason}); offline? {hint}"
        ) from None


BINARY_SNIFF_BYTES = 8192


def _open_text_check(path: Path) -> None:
    """Refuse a file that is binary (NUL bytes near its start): not a CSV extract."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as stream:
            head = stream.read(BINARY_SNIFF_BYTES)
    except (OSError, EOFError) as error:
        raise DataValidationError(str(path), f"cannot read the file: {error}") from None
    if b"\0" in head:
        raise DataValidationError(
            str(path), "is a binary file (it holds NUL bytes), not CSV text; expected UTF-8 CSV"
        )


def read_interactions_file(
    path: str | Path, columns: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The validated events in the CSV or Parquet file at `path`, in canonical columns.

    A CSV must be UTF-8 text; a binary or otherwise encoded file is refused, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataUnavailableError(f"{path}: no such file")
    if path.suffix.lower() in {".parquet", ".pq"}:
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
            raise DataValidationError(str(path), f"not a readable Parquet file: {error}") from None
        return validate_interactions(frame, str(path), columns=columns)
    if not path.name.lower().endswith((".csv", ".csv.gz")):
        raise ValueError(f"{path}: expected a .csv, .csv.gz, .parquet or .pq file")
    _open_text_check(path)
    try:
        frame = pd.read_csv(path, dtype=str, skip_blank_lines=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except pd.errors.ParserError as error:
        raise DataValidationError(str(path), f"cannot parse the file: {error}") from None
    except UnicodeDecodeError as error:
        raise DataValidationError(
            str(path),
            f"is not UTF-8 text (byte {error.start} of the file: {error.reason}); save the "
            "extract as UTF-8 CSV",
        ) from None
    return validate_interactions(frame, str(path), columns=columns, header_lines=1)


class QueryRefused(ShoprecError, ValueError):
    """A dataset query that is not a single read-only SELECT: it never reaches the database."""

    exit_code = EXIT_BAD_INPUT


# Keywords that make a SELECT change data or schema (`SELECT ... INTO t`, `FOR UPDATE`).
WRITING_KEYWORDS = frozenset({"INTO"})


def check_read_only_query(query: str) -> str:
    """`query` if it is one SELECT (or WITH ... SELECT) statement that changes nothing.

    Raises QueryRefused naming what is wrong otherwise.
    """
    statements = [s for s in sqlparse.parse(query) if s.value.strip(" \t\r\n;")]
    if not statements:
        raise QueryRefused("the query is empty; expected one SELECT statement")
    if len(statements) > 1:
        raise QueryRefused(
            f"the query holds {len(statements)} statements; a dataset is read by one SELECT"
        )
    (statement,) = statements
    kind = statement.get_type()
    if kind != "SELECT":
        what = "an unrecognised statement" if kind == "UNKNOWN" else f"a {kind} statement"
        raise QueryRefused(
            f"{what} is refused: a dataset is read by one SELECT (or WITH ... SELECT), never "
            "written"
        )
    for token in statement.flatten():
        dml = token.ttype in sqlparse.tokens.Keyword.DML and token.normalized != "SELECT"
        ddl = token.ttype in sqlparse.tokens.Keyword.DDL
        if dml or ddl or (token.ttype in Keyword and token.normalized in WRITING_KEYWORDS):
            raise QueryRefused(
                f"the query uses {token.normalized}: a dataset query may only read, never "
                "change data or schema"
            )
    return str(statement).strip().rstrip(";").strip()


def database_url(url: str) -> sqlalchemy.URL:
    """`url` as a SQLAlchemy URL; a plain path names an existing SQLite file.

    A password masked as `***` (or none, for backends without their own password file) is
    taken from $SHOPREC_DATABASE_PASSWORD; PostgreSQL's driver also reads PGPASSWORD and .pgpass.
    """
    if "://" not in url:
        path = Path(url)
        if not path.is_file():
            raise DataUnavailableError(f"{url}: no such SQLite database file")
        return sqlalchemy.URL.create("sqlite", database=str(path.resolve()))
    address = sqlalchemy.make_url(url)
    secret = get_settings().database_password
    password = secret.get_secret_value() if secret is not None else None
    if address.password == MASK and not password:
        raise DataUnavailableError(
            f"{address.render_as_string(hide_password=True)}: the password was masked in the "
            f"parameters; set {DATABASE_PASSWORD_VARIABLE} (or PGPASSWORD / ~/.pgpass for "
            "PostgreSQL) in the environment"
        )
    if password and address.password in (MASK, None) and address.username:
        address = address.set(password=password)
    if address.drivername == "postgresql":
        address = address.set(drivername="postgresql+psycopg")
    return address


def read_only_engine(address: sqlalchemy.URL) -> sqlalchemy.Engine:
    """An engine whose connections cannot write where the backend allows it (SQLite, PostgreSQL)."""
    backend = address.get_backend_name()
    if backend == "sqlite" and address.database not in (None, "", ":memory:"):
        uri = Path(address.database).resolve().as_uri() + "?mode=ro"
        engine = sqlalchemy.create_engine(
            "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False)
        )
    elif backend == "postgresql":
        options = {"options": "-c default_transaction_read_only=on"}
        engine = sqlalchemy.create_engine(address, connect_args=options)
    else:
        engine = sqlalchemy.create_engine(address)

    @sqlalchemy.event.listens_for(engine, "connect")
    def _query_only(dbapi_connection, record) -> None:
        if backend == "sqlite":
            dbapi_connection.execute("PRAGMA query_only = ON")

    return engine


def read_interactions_sql(
    query: str, url: str, columns: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The validated events that `query` returns from the database at `url`, read-only.

    Raises QueryRefused, before connecting, unless `query` is a single read-only SELECT.
    """
    statement = check_read_only_query(query)
    address = database_url(url)
    source = f"query on {address.render_as_string(hide_password=True)}"
    engine = read_only_engine(address)
    try:
        with engine.connect() as connection:
            if address.get_backend_name() == "postgresql":
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            frame = pd.read_sql_query(sqlalchemy.text(statement), connection)
            connection.rollback()
    except sqlalchemy.exc.DBAPIError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise DataUnavailableError(f"{source}: {redact_text(reason)}") from None
    finally:
        engine.dispose()
    return validate_interactions(frame, source, columns=columns)


def sample_users(rows: pd.DataFrame, n_users: int, seed: int) -> pd.DataFrame:
    """All rows of `n_users` users drawn with `seed` (every row if there are no more users)."""
    users = np.sort(rows["user_id"].unique())
    if len(users) <= n_users:
        return rows
    chosen = np.random.default_rng(seed).choice(users, size=n_users, replace=False)
    return rows[rows["user_id"].isin(chosen)].reset_index(drop=True)


def sum_by_user_item(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, item): summed weight and the latest timestamp.

    Pairs keep the order of their first row in `rows` (the source's order), which the
    `stratified` split depends on: with it, MovieLens splits exactly as Recommenders' tables do.
    """
    return rows.groupby(["user_id", "item_id"], as_index=False, sort=False).agg(
        weight=("weight", "sum"), timestamp=("timestamp", "max")
    )


def item_table(item_ids: pd.Series, catalogue: pd.DataFrame | None = None) -> pd.DataFrame:
    """item_id, title, category and genres of `item_ids`, from `catalogue` where it has them."""
    items = pd.DataFrame({"item_id": np.unique(np.asarray(item_ids, dtype=np.int64))})
    known = pd.DataFrame(columns=list(ITEM_COLUMNS)) if catalogue is None else catalogue
    items = items.merge(known[list(ITEM_COLUMNS)].astype({"item_id": np.int64}), how="left")
    items["title"] = items["title"].fillna("item " + items["item_id"].astype(str))
    items["category"] = items["category"].fillna("unknown")
    items["genres"] = items["genres"].fillna("")
    return items
