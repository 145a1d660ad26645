"""The shoprec model as an MLflow pyfunc, logged as code ("models from code"), never pickled.

MLflow runs this file when it loads the model: `load_context` loads the logged shoprec
artifact (NumPy arrays + JSON, checksums verified) and `predict` returns recommendations.
"""

from typing import Any

import mlflow
import pandas as pd

DEFAULT_K = 10


class ShoprecModel(mlflow.pyfunc.PythonModel):
    """Top-k recommendations per user from a shoprec model artifact."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Load and verify the artifact logged under `shoprec_model`."""
        from shoprec.artifact import ARTIFACT_KEY, load_model

        self.model = load_model(context.artifacts[ARTIFACT_KEY])

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Recommendations for each `user_id`; an optional `k` column (one value) sets how many."""
        k = DEFAULT_K
        if "k" in model_input and len(model_input):
            values = model_input["k"].unique()
            if len(values) != 1:
                raise ValueError(f"column k: expected one value for every row, got {list(values)}")
            k = int(values[0])
        return self.model.recommend(model_input["user_id"].to_numpy(), k=k)


mlflow.models.set_model(ShoprecModel())
