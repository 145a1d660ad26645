"""HTTP endpoints: recommendations per user, similar items per item, health, metrics.

Handlers answer from one `ServedModel` read once per request, serialise with orjson and name
the model version in the body and in the `X-Model-Version` header. Every `/recommendations`
answer gets a request id (body and `X-Request-ID` header) and is logged as an impression.
"""

import os
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field

from shoprec.service import metrics
from shoprec.service.served import FALLBACK_SCORE_SCALE, MAX_K, MODEL_SCORE_SCALE, SCORE_SCALES
from shoprec.service.served import ServedModel as ServedModel  # re-exported

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
PLAIN_INTEGER = re.compile(r"-?[0-9]+")
DEFAULT_K = 10


class ModelInfo(BaseModel):
    """Which model version answered."""

    version: str | None = Field(description="registry version of the model (null: a bare artifact)")
    run_id: str | None
    algorithm: str
    shoprec_version: str


class RecommendedItem(BaseModel):
    """One recommended item; rank 1 is best."""

    item_id: int
    rank: int
    score: float = Field(description="on the scale named by the response's score_scale")
    fallback: bool = Field(description="a popular item given because the user is unknown")


class Recommendations(BaseModel):
    """Top-k items for a user; `fallback` means popular items for a user the model never saw."""

    request_id: str = Field(description="also in the X-Request-ID header; send it with events")
    user_id: int
    k: int
    fallback: bool
    score_scale: str = Field(description=f"{MODEL_SCORE_SCALE!r} or {FALLBACK_SCORE_SCALE!r}")
    score_scales: dict[str, str] = Field(description="what each score scale means")
    model: ModelInfo
    items: list[RecommendedItem]


class SimilarItem(BaseModel):
    """One similar item; rank 1 is most similar."""

    item_id: int
    rank: int
    score: float = Field(description="the model's item-item similarity (higher is more similar)")


class SimilarItems(BaseModel):
    """Items most similar to a given item."""

    item_id: int
    k: int
    model: ModelInfo
    items: list[SimilarItem]


class Health(BaseModel):
    """Liveness and identity of the model version this worker serves, and its canary."""

    status: str
    environment: str
    model_version: str | None
    run_id: str | None
    algorithm: str
    model_sha256: str
    canary_version: str | None = Field(description="the challenger a share of users gets")
    canary_fraction: float | None = Field(description="the canary's share of users, 0 to 1")
    loaded_at: str
    worker_pid: int


def _invalid(field: str, message: str, value: Any = None) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("query", field), "msg": message, "type": "value_error", "input": value}]
    )


def query(request: Request, *allowed: str) -> dict[str, str]:
    """The query parameters, refusing unknown and repeated ones with a 422."""
    params = request.query_params
    multi = params.multi_items()
    found = dict(multi)
    if len(found) != len(multi) or not found.keys() <= set(allowed):
        unknown = sorted(found.keys() - set(allowed))
        if unknown:
            raise _invalid(
                unknown[0],
                "unknown query parameter; this endpoint takes "
                + (", ".join(sorted(allowed)) or "none"),
            )
        repeated = sorted(key for key in found if len(params.getlist(key)) > 1)
        raise _invalid(repeated[0], "given more than once; give it once")
    return found


def _required(found: dict[str, str], name: str) -> str:
    if name not in found:
        raise _invalid(name, "Field required")
    return found[name]


def _at_most(limit: int) -> str:
    """A regex for the whole numbers from 10**(n-1) to `limit`, written in its n digits."""
    digits = str(limit)
    parts = [digits]
    for place, digit in enumerate(digits):
        low, rest = (1 if place == 0 else 0), len(digits) - place - 1
        if int(digit) > low:
            parts.append(
                f"{digits[:place]}[{low}-{int(digit) - 1}]" + f"[0-9]{{{rest}}}" * (rest > 0)
            )
    return "|".join(parts)


def integer_pattern(low: int, high: int) -> str:
    """A regex for exactly the decimal texts of the whole numbers from `low` to `high`, with
    any leading zeros (and a minus for negatives): `low` <= 0 < `high`, or 1 <= `low` <= 9."""
    if low > 0:
        longer = len(str(high)) - 1  # numbers of 2 to `longer` digits are all in range
        return f"^0*(?:[{low}-9]|[1-9][0-9]{{1,{longer - 1}}}|{_at_most(high)})$"
    shorter = len(str(-low)) - 1  # numbers of up to `shorter` digits are all in range
    return f"^(?:-?0*[0-9]{{1,{shorter}}}|0*(?:{_at_most(high)})|-0*(?:{_at_most(-low)}))$"


def _parameter(
    name: str, description: str, example: int, low: int = INT64_MIN, high: int = INT64_MAX
) -> dict[str, Any]:
    """A query parameter taking a plain decimal integer from `low` to `high`. Described as
    text with a pattern, as it is sent: a JSON Schema integer would admit `42.0`."""
    return {
        "name": name,
        "in": "query",
        "required": name != "k",
        "description": f"{description}: a plain decimal integer from {low} to {high}",
        "schema": {
            "type": "string",
            "pattern": integer_pattern(low, high),
            "example": str(example),
        },
    }


USER_PARAM = _parameter("user_id", "Shop user id", 42)
ITEM_PARAM = _parameter("item_id", "Catalogue item id", 7)
K_PARAM = _parameter("k", f"How many items to return (default {DEFAULT_K})", DEFAULT_K, 1, MAX_K)


class FieldProblem(BaseModel):
    """One bad field: where it is (e.g. `user_id`, `[1].timestamp`) and what was expected."""

    field: str
    message: str


class Problem(BaseModel):
    """Why a request was refused, in one line."""

    detail: str


class ValidationProblem(Problem):
    """A 422: every bad field, in one line (`detail`) and one by one (`errors`)."""

    errors: list[FieldProblem]


INVALID = {422: {"model": ValidationProblem, "description": "a bad or unknown query parameter"}}


def plain_integer(field: str, value: str, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """`value` as an int when it is a plain decimal integer in [low, high]; else a 422."""
    if not PLAIN_INTEGER.fullmatch(value):
        raise _invalid(
            field,
            f"Input should be a valid integer: plain decimal digits with an optional leading "
            f"minus, got {value[:40]!r}",
            value,
        )
    number = int(value)
    if not low <= number <= high:
        low_or_high = ("greater", low) if number < low else ("less", high)
        bound = f"{low_or_high[0]} than or equal to {low_or_high[1]}"
        raise _invalid(field, f"Input should be {bound}", value)
    return number


router = APIRouter()


def _model_info(served: ServedModel) -> dict[str, Any]:
    return {
        "version": served.model_version,
        "run_id": served.run_id,
        "algorithm": served.algorithm,
        "shoprec_version": served.version,
    }


def _json(body: dict[str, Any], served: ServedModel, headers: dict[str, str] | None = None):  # noqa: ANN202
    return Response(
        orjson.dumps(body),
        media_type="application/json",
        headers={"x-model-version": served.label, **(headers or {})},
    )


@router.get(
    "/recommendations",
    response_model=Recommendations,
    responses=INVALID,
    openapi_extra={"parameters": [USER_PARAM, K_PARAM]},
)
async def recommendations(request: Request) -> Response:
    """Top-k unseen items for a user; popular items (flagged fallback) for an unknown user."""
    start = time.perf_counter()
    found = query(request, "user_id", "k")
    user = plain_integer("user_id", _required(found, "user_id"))
    # one version for the whole answer: the canary's challenger for its users, else the current
    served: ServedModel = request.app.state.holder.for_user(user)
    request.state.model_version = served.label
    count = plain_integer("k", found.get("k", str(DEFAULT_K)), 1, MAX_K)
    items, scores, fallback = served.recommend(user, count)
    request_id = uuid.uuid4().hex
    listed = [
        {"item_id": item, "rank": rank, "score": score, "fallback": fallback}
        for rank, (item, score) in enumerate(zip(items, scores, strict=True), start=1)
    ]
    body = {
        "request_id": request_id,
        "user_id": user,
        "k": count,
        "fallback": fallback,
        "score_scale": FALLBACK_SCORE_SCALE if fallback else MODEL_SCORE_SCALE,
        "score_scales": SCORE_SCALES,
        "model": _model_info(served),
        "items": listed,
    }
    impressions = request.app.state.impressions
    if impressions is not None:
        impressions.log(
            {
                "request_id": request_id,
                "served_at": datetime.now(UTC),
                "environment": served.environment,
                "model_version": served.label,
                "user_id": user,
                "k": count,
                "fallback": fallback,
                "latency_ms": (time.perf_counter() - start) * 1000.0,
                "items": orjson.dumps(
                    [[item, rank, score] for rank, (item, score) in
                     enumerate(zip(items, scores, strict=True), start=1)]
                ).decode(),
            }
        )  # fmt: skip
        metrics.IMPRESSIONS.labels(served.environment, served.label).inc()
    return _json(body, served, {"x-request-id": request_id})


@router.get(
    "/similar-items",
    response_model=SimilarItems,
    responses={
        **INVALID,
        404: {"model": Problem, "description": "an item the model never saw"},
    },
    openapi_extra={"parameters": [ITEM_PARAM, K_PARAM]},
)
async def similar_items(request: Request) -> Response:
    """The k items most similar to an item, with scores; 404 for an item the model never saw."""
    served: ServedModel = request.app.state.holder.current
    request.state.model_version = served.label
    found = query(request, "item_id", "k")
    item = plain_integer("item_id", _required(found, "item_id"))
    count = plain_integer("k", found.get("k", str(DEFAULT_K)), 1, MAX_K)
    try:
        items, scores = served.similar_items(item, count)
    except KeyError as error:
        raise HTTPException(
            status_code=404, detail=f"item_id {item} is not in the model's catalogue"
        ) from error
    listed = [
        {"item_id": other, "rank": rank, "score": score}
        for rank, (other, score) in enumerate(zip(items, scores, strict=True), start=1)
    ]
    body = {"item_id": item, "k": count, "model": _model_info(served), "items": listed}
    return _json(body, served)


@router.head("/health", include_in_schema=False)
@router.get("/health", response_model=Health, responses=INVALID)
async def health(request: Request) -> Response:
    """Whether the service is up, which model version this worker serves, and its canary's
    challenger version and share of users (null when no canary runs)."""
    holder = request.app.state.holder
    served: ServedModel = holder.current
    canary = holder.canary
    query(request)
    body = {
        "status": "ok",
        "environment": served.environment,
        "model_version": served.model_version,
        "run_id": served.run_id,
        "algorithm": served.algorithm,
        "model_sha256": served.model_sha256,
        "canary_version": canary[0].model_version if canary else None,
        "canary_fraction": canary[1] if canary else None,
        "loaded_at": served.loaded_at,
        "worker_pid": os.getpid(),
    }
    return _json(body, served)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "Prometheus text format"}},
)  # fmt: skip
async def prometheus_metrics() -> Response:
    """Prometheus metrics of every worker."""
    payload, content_type = metrics.exposition()
    return Response(payload, media_type=content_type)


class Index(BaseModel):
    """Where the API is documented, and its endpoints."""

    service: str
    docs: str
    openapi: str
    endpoints: list[str]


@router.get("/", response_model=Index)
async def index() -> Response:
    """Where the API is documented, and its endpoints."""
    body = {
        "service": "shoprec",
        "docs": "/docs",
        "openapi": "/openapi.json",
        "endpoints": ["/recommendations", "/similar-items", "/events", "/health", "/metrics"],
    }
    return Response(orjson.dumps(body), media_type="application/json")
