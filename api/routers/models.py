from __future__ import annotations

from fastapi import APIRouter

from api.auth import QueryCaller
from api.deps import RuntimeDep
from api.schemas import ModelInfo, ModelList

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", summary="The model catalog: pinned versions, prices, breaker states")
def list_models(rt: RuntimeDep, _caller: QueryCaller) -> ModelList:
    catalog = rt.router.catalog
    scores = rt.scoreboard.scores()
    return ModelList(
        default_policy=catalog.default_policy,
        policies=catalog.policies,
        models=[
            ModelInfo.model_validate(m | {"score": scores.get(m["name"])})
            for m in rt.router.describe()
        ],
    )
