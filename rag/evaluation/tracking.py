"""Log an evaluation to MLflow: a local SQLite file (./mlflow.db) by default, so it works offline.

MLflow 3 keeps the old ./mlruns folder store in maintenance mode and refuses to write to it;
its SQLite store is the local file backend it recommends.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.errors import InvalidInput

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


def metric_name(name: str) -> str:
    """MLflow keys take letters, digits and `_-. /` only: "ndcg@10" → "ndcg_at_10"."""
    return _UNSAFE.sub("_", name.replace("@", "_at_"))


def log_run(
    *,
    experiment: str,
    run_name: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float | None],
    artifacts: Sequence[Path] = (),
    tracking_uri: str | None = None,
) -> str:
    """One MLflow run with `params`, the non-empty `metrics` and `artifacts`; returns its id.
    The store is `tracking_uri`, else MLFLOW_TRACKING_URI, else ./mlflow.db."""
    try:
        import mlflow
    except ImportError as exc:
        raise InvalidInput(
            "--mlflow needs MLflow: pip install mlflow-skinny (it is in the dev extra)"
        ) from exc
    from mlflow.exceptions import MlflowException

    default = f"sqlite:///{Path('mlflow.db').resolve()}"
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name=run_name) as run:
            mlflow.log_params({metric_name(k): v for k, v in params.items()})
            mlflow.log_metrics({metric_name(k): v for k, v in metrics.items() if v is not None})
            for path in artifacts:
                mlflow.log_artifact(str(path))
            return str(run.info.run_id)
    except MlflowException as exc:
        raise InvalidInput(f"MLflow at {uri}: {exc.message}") from exc
