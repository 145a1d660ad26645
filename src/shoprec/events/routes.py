"""`POST /events`: clicks, add-to-carts and purchases, one event or a batch, stored whole.

A body over MAX_BODY_BYTES is refused (413) before it is parsed, as soon as its length is known
(Content-Length) or passed (chunked). A batch is validated first and stored in one
transaction: one bad event refuses the whole batch (422 naming the event and field) and
nothing of it is stored. A `timestamp` is ISO 8601 with seconds and a zone (TIMESTAMP_SHAPE);
any other text or number is a 422. An `event_id` makes an event idempotent: sending it again
is accepted and not stored twice. When `SHOPREC_API_KEY` is set, the `X-API-Key` header must
carry it.
"""

import hmac
import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from shoprec.events.errors import EventStoreError
from shoprec.service import metrics
from shoprec.service.routes import Problem, ValidationProblem

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_BATCH = 1_000
MAX_BODY_BYTES = 1_048_576  # 1 MiB; a full batch of 1,000 events takes about 200 KB
API_KEY_HEADER = "X-API-Key"
EVENT_SCHEMA = "#/components/schemas/FeedbackEvent"


def json_integer(value: object) -> object:
    """A JSON number with no fraction as the exact int it is (JSON, and so the API's
    description, make `42.0` the integer 42; numbers are parsed as Decimals, exactly); any
    other value is passed on to be refused."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return value


Id = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX), BeforeValidator(json_integer)]

# The one shape of time accepted: ISO 8601's extended calendar date-time with seconds and a zone
# (RFC 3339's profile), years 1970 to 2199 as written, no leap second: what an event can
# honestly carry, and what the pipeline (seconds since the Unix epoch) and pandas can hold.
TIMESTAMP_PATTERN = (
    r"^(19[7-9][0-9]|2[01][0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(?:\.([0-9]{1,9}))?"
    r"(?:Z|([+-])([01][0-9]|2[0-3]):([0-5][0-9]))$"
)  # plain groups: the same pattern in Python and in the OpenAPI description (ECMA-262)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
TIMESTAMP_SHAPE = (
    "an ISO 8601 date-time with seconds and a time zone, YYYY-MM-DDThh:mm:ss[.fraction] "
    "followed by Z or +hh:mm / -hh:mm, years 1970 to 2199 (e.g. 2026-11-28T10:00:00Z)"
)


def event_time(value: object) -> datetime:
    """An event's `timestamp` as an aware datetime in UTC; PydanticCustomError (a 422 naming
    the field) for anything but the one accepted ISO 8601 shape, including Unix numbers."""
    if not isinstance(value, str):
        raise PydanticCustomError(
            "timestamp_type", f"expected {TIMESTAMP_SHAPE}, as a string; Unix times are refused"
        )
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        raise PydanticCustomError("timestamp_format", f"expected {TIMESTAMP_SHAPE}")
    year, month, day, hour, minute, second, fraction, sign, zone_hour, zone_minute = match.groups()
    offset = timedelta(hours=int(zone_hour or 0), minutes=int(zone_minute or 0))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int((fraction or "0").ljust(6, "0")[:6]),
            tzinfo=timezone(-offset if sign == "-" else offset),
        )  # fmt: skip
    except ValueError as error:  # a day the month does not have
        raise PydanticCustomError(
            "timestamp_date", f"not a calendar date ({error}); expected {TIMESTAMP_SHAPE}"
        ) from None
    return moment.astimezone(UTC)  # years 1970-2199 stay within datetime's range


Timestamp = Annotated[
    datetime,
    BeforeValidator(event_time),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": TIMESTAMP_PATTERN,
            "description": f"when it happened: {TIMESTAMP_SHAPE}",
            "examples": ["2026-11-28T10:00:00Z", "2026-11-28T11:00:00.250+01:00"],
        }
    ),
]


class FeedbackEvent(BaseModel):
    """What a user did with an item, and when."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["click", "add_to_cart", "purchase"]
    user_id: Id
    item_id: Id
    timestamp: Timestamp
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


def _invalid(message: str, kind: str = "value_error") -> RequestValidationError:
    return RequestValidationError([{"loc": ("body",), "msg": message, "type": kind}])


def _too_large(size: str) -> HTTPException:
    return HTTPException(
        status_code=413,
        detail=f"request body of {size}: at most {MAX_BODY_BYTES} bytes (1 MiB) per request; "
        f"send at most {MAX_BATCH} events at a time",
    )


async def _body(request: Request) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed MAX_BODY_BYTES: from
    its Content-Length, else while it streams in (chunked), before anything is parsed."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(f"{int(declared)} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(f"more than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _parse(body: bytes) -> Any:
    """The JSON document `body` holds; 422 when it holds none."""
    if not body.strip():
        raise _invalid("expected a JSON event or a list of events", "missing")
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        reason = str(error) if not isinstance(error, RecursionError) else "nested too deeply"
        raise _invalid(f"not valid JSON: {reason[:120]}", "json_invalid") from None


def _validate(payload: Any) -> list[FeedbackEvent]:
    try:
        if isinstance(payload, list):
            if not payload:
                raise _invalid("empty batch: give at least one event")
            if len(payload) > MAX_BATCH:
                raise _invalid(f"batch of {len(payload)} events; at most {MAX_BATCH} per request")
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
    responses={
        401: {
            "model": Problem,
            "description": f"SHOPREC_API_KEY is set and the {API_KEY_HEADER} "
            "header does not carry it",
        },
        413: {"model": Problem, "description": f"the body is over {MAX_BODY_BYTES} bytes"},
        422: {"model": ValidationProblem, "description": "a bad event: nothing was stored"},
        503: {
            "model": Problem,
            "description": "the event store is unavailable: nothing was "
            "stored; send the events again",
        },
    },  # fmt: skip
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": f"one event, or a list of 1 to {MAX_BATCH}; at most {MAX_BODY_BYTES} "
            "bytes",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": EVENT_SCHEMA},
                            {
                                "type": "array",
                                "items": {"$ref": EVENT_SCHEMA},
                                "minItems": 1,
                                "maxItems": MAX_BATCH,
                            },
                        ]
                    }
                }
            },
        }
    },
)
async def post_events(request: Request) -> JSONResponse:
    """Store one feedback event or a batch of them, all or none (422 names the bad field)."""
    events = _validate(_parse(await _body(request)))
    received = datetime.now(UTC)
    environment = request.app.state.environment
    rows = [
        {
            "event_id": event.event_id or uuid.uuid4().hex,
            "event_type": event.type,
            "user_id": event.user_id,
            "item_id": event.item_id,
            "occurred_at": event.timestamp,
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
