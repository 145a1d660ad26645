"""`POST /events`: clicks, add-to-carts and purchases, one event or a batch, stored whole.

A batch is validated first and stored in one transaction: one bad event refuses the whole
batch (422 naming the event and field) and nothing of it is stored. An `event_id` makes an
event idempotent: sending it again is accepted and not stored twice. When `SHOPREC_API_KEY`
is set, the `X-API-Key` header must carry it.
"""

import hmac
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    TypeAdapter,
    ValidationError,
)

from shoprec.events.errors import EventStoreError
from shoprec.service import metrics

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_BATCH = 1_000
API_KEY_HEADER = "X-API-Key"
EVENT_SCHEMA = "#/components/schemas/FeedbackEvent"
Id = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]


class FeedbackEvent(BaseModel):
    """What a user did with an item, and when."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["click", "add_to_cart", "purchase"]
    user_id: Id
    item_id: Id
    timestamp: AwareDatetime = Field(description="ISO 8601 with a time zone, e.g. ...Z")
    request_id: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{32}$",
        description="the request_id of the /recommendations answer the event follows",
    )
    event_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="your id for the event: sending it again stores it once",
    )


class Accepted(BaseModel):
    """What the store did with the events."""

    stored: int
    duplicates: int
    event_ids: list[str]


_single = TypeAdapter(FeedbackEvent)
_batch = TypeAdapter(list[FeedbackEvent])


async def require_api_key(request: Request) -> None:
    """401 unless the request carries the API key, when one is configured."""
    from shoprec.settings import get_settings

    key = request.app.state.__dict__.get("api_key")
    if key is None:
        secret = get_settings().api_key
        key = secret.get_secret_value() if secret is not None else ""
    if key and not hmac.compare_digest(
        request.headers.get(API_KEY_HEADER, "").encode(), key.encode()
    ):
        raise HTTPException(
            status_code=401,
            detail=f"missing or wrong API key: send it in the {API_KEY_HEADER} header",
        )


def _validate(payload: Any) -> list[FeedbackEvent]:
    try:
        if isinstance(payload, list):
            if not payload:
                raise RequestValidationError(
                    [
                        {
                            "loc": ("body",),
                            "msg": "empty batch: give at least one event",
                            "type": "value_error",
                        }
                    ]  # fmt: skip
                )
            if len(payload) > MAX_BATCH:
                raise RequestValidationError(
                    [
                        {
                            "loc": ("body",),
                            "msg": f"batch of {len(payload)} events; at most "
                            f"{MAX_BATCH} per request",
                            "type": "value_error",
                        }
                    ]  # fmt: skip
                )
            return _batch.validate_python(payload)
        return [_single.validate_python(payload)]
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("body", *item["loc"])} for item in error.errors()]
        ) from None


router = APIRouter()


@router.post(
    "/events",
    response_model=Accepted,
    dependencies=[Depends(require_api_key)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": EVENT_SCHEMA},
                            {"type": "array", "items": {"$ref": EVENT_SCHEMA}},
                        ]
                    }
                }
            },
        }
    },
)
async def post_events(
    request: Request,
    payload: Annotated[Any, Body(include_in_schema=False)] = None,
) -> JSONResponse:
    """Store one feedback event or a batch of them, all or none (422 names the bad field)."""
    if payload is None:
        raise RequestValidationError(
            [
                {
                    "loc": ("body",),
                    "msg": "expected a JSON event or a list of events",
                    "type": "missing",
                }
            ]  # fmt: skip
        )
    events = _validate(payload)
    received = datetime.now(UTC)
    environment = request.app.state.environment
    rows = [
        {
            "event_id": event.event_id or uuid.uuid4().hex,
            "event_type": event.type,
            "user_id": event.user_id,
            "item_id": event.item_id,
            "occurred_at": event.timestamp.astimezone(UTC),
            "received_at": received,
            "environment": environment,
            "request_id": event.request_id,
        }
        for event in events
    ]
    try:
        store = request.app.state.feedback_store()
        stored, duplicates = await run_in_threadpool(store.add_feedback, rows)
    except EventStoreError as error:
        raise HTTPException(
            status_code=503, detail=f"{error}; nothing was stored, send the events again"
        ) from error
    for row in rows:
        metrics.FEEDBACK.labels(row["event_type"]).inc()
    body = Accepted(
        stored=stored, duplicates=duplicates, event_ids=[row["event_id"] for row in rows]
    )
    return JSONResponse(body.model_dump(), status_code=200)
