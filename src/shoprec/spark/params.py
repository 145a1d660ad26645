# Generated from notebooks/lib/spark_engine.ipynb: edit the notebook, not this file.

"""The `engine` and `spark_master` notebook parameters, checked without starting Spark."""

from shoprec.metrics import ALL_METRIC_NAMES
from shoprec.params import ParameterError, check_choice

ENGINES = ("local", "spark")
"""`local`: pandas, NumPy and SciPy in this process; `spark`: Apache Spark (`shoprec.spark`)."""
SPARK_ALGORITHMS = ("popularity", "cooccurrence", "als")
SPARK_SPLIT_METHODS = ("chronological", "stratified", "random")
SPARK_METRIC_NAMES = tuple(name for name in ALL_METRIC_NAMES if name != "novelty")


def _check_available(name: str, value: object, available: tuple[str, ...]) -> None:
    if value is not None and value not in available:
        raise ParameterError(
            f"parameter {name}={value!r} is not available with engine='spark'; expected one of "
            f"{list(available)}, or engine='local'"
        )


def check_engine(
    engine: object,
    spark_master: object,
    *,
    algorithm: object = None,
    split_method: object = None,
    metric: object = None,
) -> None:
    """Fail unless `engine` is one of ENGINES and `spark_master` a master URL ("" for the
    setting's); with `spark`, unless `algorithm`, `split_method` and `metric` (when given)
    are ones the Spark engine has. Nothing starts: no Java is needed to check."""
    check_choice("engine", engine, ENGINES)
    if not isinstance(spark_master, str):
        raise ParameterError(
            f"parameter spark_master={spark_master!r} is not allowed; expected a string: "
            "'' ($SHOPREC_SPARK_MASTER, else local[*]), local[N], spark://host:port, yarn, "
            "k8s://..., or sc://host:port"
        )
    if engine != "spark":
        return
    try:
        from shoprec.spark.session import resolve_master
    except ImportError:
        raise ParameterError(
            "parameter engine='spark' needs pyspark: install shoprec with the 'spark' extra"
        ) from None
    resolve_master(spark_master or None)
    _check_available("algorithm", algorithm, SPARK_ALGORITHMS)
    _check_available("split_method", split_method, SPARK_SPLIT_METHODS)
    _check_available("metric", metric, SPARK_METRIC_NAMES)
