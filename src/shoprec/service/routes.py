"""HTTP endpoints: recommendations per user, similar items per item, and health."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from shoprec.models import Recommender

INT64_MAX = 2**63 - 1
MAX_K = 100


@dataclass(frozen=True)
class ServedModel:
    """The model the endpoints answer with, and what identifies it."""

    model: Recommender
    run_id: str | None
    model_version: str | None
    algorithm: str
    version: str
    model_sha256: str
    environment: str
    loaded_at: str


class ModelInfo(BaseModel):
    """Which model answered."""

    run_id: str | None
    algorithm: str
    version: str


class RecommendedItem(BaseModel):
    """One recommended item; rank 1 is best."""

    item_id: int
    score: float
    rank: int


class Recommendations(BaseModel):
    """Top-k items for a user; `fallback` means popular items for a user the model never saw."""

    user_id: int
    k: int
    fallback: bool
    model: ModelInfo
    items: list[RecommendedItem]


class SimilarItem(BaseModel):
    """One similar item; rank 1 is most similar."""

    item_id: int
    rank: int


class SimilarItems(BaseModel):
    """Items most similar to a given item."""

    item_id: int
    k: int
    model: ModelInfo
    items: list[SimilarItem]


class Health(BaseModel):
    """Liveness and identity of the served model."""

    status: str
    environment: str
    run_id: str | None
    model_version: str | None
    algorithm: str
    model_sha256: str
    loaded_at: str


def served_model(request: Request) -> ServedModel:
    """The model the app loaded at start-up."""
    return request.app.state.served


Served = Annotated[ServedModel, Depends(served_model)]
UserId = Annotated[int, Query(description="Shop user id", ge=-INT64_MAX, le=INT64_MAX)]
ItemId = Annotated[int, Query(description="Catalogue item id", ge=-INT64_MAX, le=INT64_MAX)]
K = Annotated[int, Query(description="How many items to return", ge=1, le=MAX_K)]

router = APIRouter()


def _model_info(served: ServedModel) -> ModelInfo:
    return ModelInfo(run_id=served.run_id, algorithm=served.algorithm, version=served.version)


@router.get("/recommendations", response_model=Recommendations)
def recommendations(served: Served, user_id: UserId, k: K = 10) -> Recommendations:
    """Top-k unseen items for a user; popular items (fallback) for an unknown user."""
    frame = served.model.recommend([user_id], k=k)
    items = [
        RecommendedItem(item_id=int(row.item_id), score=float(row.score), rank=int(row.rank))
        for row in frame.itertuples(index=False)
    ]
    return Recommendations(
        user_id=user_id,
        k=k,
        fallback=not served.model.is_known_user(user_id),
        model=_model_info(served),
        items=items,
    )


@router.get("/similar-items", response_model=SimilarItems)
def similar_items(served: Served, item_id: ItemId, k: K = 10) -> SimilarItems:
    """The k items most similar to an item; 404 for an item the model never saw."""
    try:
        similar = served.model.similar_items([item_id], k=k)[0][0]
    except KeyError as error:
        raise HTTPException(
            status_code=404, detail=f"item_id {item_id} is not in the model's catalogue"
        ) from error
    items = [
        SimilarItem(item_id=int(item), rank=rank)
        for rank, item in enumerate((item for item in similar if item >= 0), start=1)
    ]
    return SimilarItems(item_id=item_id, k=k, model=_model_info(served), items=items)


@router.get("/health", response_model=Health)
def health(served: Served) -> Health:
    """Whether the service is up, and which model it serves."""
    return Health(
        status="ok",
        environment=served.environment,
        run_id=served.run_id,
        model_version=served.model_version,
        algorithm=served.algorithm,
        model_sha256=served.model_sha256,
        loaded_at=served.loaded_at,
    )
