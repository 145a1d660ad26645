"""The model production serves, fetched from the registry for the evaluation to compare with."""

import sys

from shoprec import redact
from shoprec.pipeline.plan import ProductionModel, ProductionUnavailable


def current_production_model() -> ProductionModel | ProductionUnavailable | None:
    """The model production serves, to evaluate against; None when nothing is in production.

    When the store fails, a warning is printed and the evaluation will be `incomplete`.
    """
    from shoprec.tracking import registry
    from shoprec.tracking.store import TrackingError, client

    try:
        mlflow_client = client()
        version = registry.alias_version(mlflow_client, "production")
        if version is None:
            return None
        return ProductionModel(str(version.version), registry.fetch(version))
    except TrackingError as error:
        reason = f"cannot fetch the production model ({error})"
        print(
            f"shoprec pipeline: warning: {reason}; the evaluation will be incomplete and the "
            "run cannot be deployed",
            file=sys.stderr,
        )
        return ProductionUnavailable(redact.redact_text(reason))
