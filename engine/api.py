"""The HTTP API that ``driftline serve`` runs (FastAPI; OpenAPI at ``/docs``).

Reads: ``/healthz``, ``/readyz``, ``/metrics``, ``/v1/models``, ``/v1/models/{model}/
versions/{version}`` (and its ``/windows``), ``/v1/alerts``, ``/v1/actions`` and the status
page ``/``. Writes, with the bearer token of ``[api] token_env``: ``POST /v1/actions/{id}/
approve|reject`` and ``POST /v1/events`` (ingestion for serving stacks without Kafka).

Bad input is answered 4xx with a reason, never 500: 401/403 for the token, 404 for an
unknown model version or action, 409 for an action that is not pending, 413 for a body over
``[api] max_body_bytes``, 415 for an unsupported content type, 422 for events that fail the
same decoding rules as Kafka messages (with each event's index and the field at fault).
"""

# (no `from __future__ import annotations`: FastAPI reads the endpoints' annotations, which
# refer to values of create_app's scope such as cfg.keep_windows)

import secrets
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import HTMLResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from driftline import __version__
from driftline.config import ApiConfig
from driftline.events import ARROW, JSON, DeadLetter
from driftline.exceptions import ActionConflict, ActionError, UnknownAction
from driftline.service import EngineStopped, Service
from driftline.status import render_status

NDJSON = "application/x-ndjson"
Kind = Literal["inference", "features", "labels"]
Auth = Annotated[str | None, Header(description="Bearer token: Authorization: Bearer <token>")]
ActionStatus = Literal[
    "pending", "approved", "queued", "done", "failed", "rejected", "skipped", "dry-run"
]


class JSONResponse(Response):
    """orjson: NaN and infinities become null, NumPy scalars are numbers."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class Decision(BaseModel):
    """The body of ``POST /v1/actions/{id}/approve|reject`` (optional)."""

    note: str = Field("", max_length=2000, description="Recorded in the action's audit log")
    actor: str = Field("api", min_length=1, max_length=200, description="Who decided")


class Problem(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail


def split_body(body: bytes, media: str) -> tuple[list[bytes], list[str | None], str]:
    """The messages of a ``POST /v1/events`` body and how errors name them: a JSON array
    (or one object), NDJSON (one event per line), or one Arrow IPC stream."""
    if media == ARROW:
        return [body], [ARROW], "message"
    if media == NDJSON:
        lines = [line for line in body.split(b"\n") if line.strip()]
        return lines, [JSON] * len(lines), "line"
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(422, {"error": "not_json", "reason": f"body is not JSON: {exc}"}) from None
    if isinstance(parsed, dict):
        return [body], [JSON], "event"
    if not isinstance(parsed, list):
        reason = f"body must be a JSON object or an array of objects, got {type(parsed).__name__}"
        raise Problem(422, {"error": "not_events", "reason": reason})
    try:
        values = [orjson.dumps(e) for e in parsed]
    except TypeError:  # orjson reads 1024 levels of nesting but writes only 254
        reason = "an event is nested too deeply (more than 254 levels)"
        raise Problem(422, {"error": "not_events", "reason": reason}) from None
    return values, [JSON] * len(values), "event"


def _errors(dead: list[DeadLetter], unit: str) -> list[dict[str, Any]]:
    out = []
    for d in dead:
        where = d.message + 1 if unit == "line" else d.message
        out.append({unit: where, "code": d.code, "reason": d.reason})
    return out


def create_app(
    service: Service,
    cfg: ApiConfig,
    *,
    registry: CollectorRegistry | None = None,
    token: str | None = None,
) -> FastAPI:
    """The API over ``service``. ``token`` is the bearer token of the mutating endpoints
    (read from ``cfg.token_env`` by the caller); without one they answer 403."""
    app = FastAPI(
        title="driftline",
        version=__version__,
        description="Streaming drift and model-quality monitor: health, windows, alerts, "
        "actions and event ingestion.",
        default_response_class=JSONResponse,
    )

    @app.exception_handler(Problem)
    async def problem(_request: Request, exc: Problem) -> Response:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    def check_token(authorization: str | None, *, write: bool) -> None:
        if token is None:
            if write:
                raise Problem(403, "writes are disabled: set [api] token_env to a token variable")
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise Problem(401, "missing bearer token (Authorization: Bearer <token>)")
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise Problem(403, "wrong bearer token")

    def reader(authorization: Auth = None) -> None:
        if cfg.protect_reads:
            check_token(authorization, write=True)

    def writer(authorization: Auth = None) -> None:
        check_token(authorization, write=True)

    Read = Depends(reader)
    Write = Depends(writer)

    # -- probes and metrics --------------------------------------------------------------

    @app.get("/healthz", summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="Readiness: state restored and partitions assigned",
        responses={503: {"description": "Not ready, with the reasons"}},
    )
    def readyz() -> Response:
        ready, reasons = service.readiness()
        return JSONResponse({"ready": ready, "reasons": reasons}, status_code=200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def metrics() -> Response:
        if registry is None:
            raise Problem(404, "metrics are not enabled")
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # -- models --------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, summary="Status page", dependencies=[Read])
    def status_page() -> HTMLResponse:
        return HTMLResponse(render_status(service))

    @app.get("/v1/models", summary="Every model version seen, with its health", dependencies=[Read])
    def models() -> dict[str, Any]:
        return {"models": service.models()}

    @app.get(
        "/v1/models/{model}/versions/{version}",
        summary="A model version: health, reasons, last window, latest per-feature statistics",
        dependencies=[Read],
        responses={404: {"description": "Unknown model version"}},
    )
    def version(model: str, version: str) -> dict[str, Any]:
        found = service.version(model, version)
        if found is None:
            raise Problem(404, f"no model {model!r} version {version!r} seen yet")
        return found

    @app.get(
        "/v1/models/{model}/versions/{version}/windows",
        summary="Recent window records of a model version, newest first",
        dependencies=[Read],
        responses={404: {"description": "Unknown model version"}},
    )
    def windows(
        model: str,
        version: str,
        limit: Annotated[int, Query(ge=1, le=cfg.keep_windows)] = 20,
    ) -> dict[str, Any]:
        records = service.windows(model, version, limit)
        if records is None:
            raise Problem(404, f"no model {model!r} version {version!r} seen yet")
        return {"windows": records}

    # -- alerts and actions --------------------------------------------------------------

    @app.get("/v1/alerts", summary="Recent alerts, newest first", dependencies=[Read])
    def alerts(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        status: Literal["firing", "resolved"] | None = None,
    ) -> dict[str, Any]:
        return {"alerts": service.alerts(limit, status)}

    @app.get("/v1/actions", summary="Recent actions, newest first", dependencies=[Read])
    def actions(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        status: ActionStatus | None = None,
    ) -> dict[str, Any]:
        return {"actions": service.actions(status, limit)}

    def decide(action_id: str, approve: bool, body: Decision | None) -> dict[str, Any]:
        d = body or Decision(note="", actor="api")
        try:
            return service.decide(action_id, approve, d.actor, d.note)
        except UnknownAction as exc:
            raise Problem(404, str(exc)) from None
        except ActionConflict as exc:
            raise Problem(409, str(exc)) from None
        except ActionError as exc:
            raise Problem(400, str(exc)) from None

    responses: dict[int | str, dict[str, Any]] = {
        400: {"description": "Id too short or ambiguous, or no policies"},
        401: {"description": "No bearer token"},
        403: {"description": "Wrong token, or writes disabled"},
        404: {"description": "Unknown action"},
        409: {"description": "The action is not pending"},
    }

    @app.post(
        "/v1/actions/{action_id}/approve",
        summary="Approve a pending action",
        dependencies=[Write],
        responses=responses,
    )
    def approve(action_id: str, body: Decision | None = None) -> dict[str, Any]:
        return decide(action_id, True, body)

    @app.post(
        "/v1/actions/{action_id}/reject",
        summary="Reject a pending action",
        dependencies=[Write],
        responses=responses,
    )
    def reject(action_id: str, body: Decision | None = None) -> dict[str, Any]:
        return decide(action_id, False, body)

    # -- ingestion -----------------------------------------------------------------------

    body_schema = {"type": "array", "items": {"type": "object"}}
    ingest_doc: dict[str, Any] = {
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": body_schema},
                NDJSON: {"schema": {"type": "string"}},
                ARROW: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }

    @app.post(
        "/v1/events",
        summary="Ingest events: a JSON array (or object), NDJSON, or an Arrow IPC stream",
        dependencies=[Write],
        openapi_extra=ingest_doc,
        responses={
            401: {"description": "No bearer token"},
            403: {"description": "Wrong token, or writes disabled"},
            413: {"description": "Body over [api] max_body_bytes"},
            415: {"description": "Unsupported content type"},
            422: {"description": "Invalid events: each one's index, code and reason"},
            503: {"description": "The engine has stopped"},
        },
    )
    async def events(
        request: Request,
        kind: Kind = "inference",
        content_length: Annotated[int | None, Header(ge=0)] = None,
    ) -> Response:
        if content_length is not None and content_length > cfg.max_body_bytes:
            raise Problem(413, f"body of {content_length} bytes is over {cfg.max_body_bytes}")
        media = (request.headers.get("content-type") or JSON).split(";")[0].strip().lower()
        if media not in (JSON, NDJSON, ARROW):
            raise Problem(415, f"content type {media!r}: send {JSON}, {NDJSON} or {ARROW}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > cfg.max_body_bytes:
                raise Problem(413, f"body is over {cfg.max_body_bytes} bytes")
        if not body:
            raise Problem(422, {"error": "empty", "reason": "empty body"})
        values, ctypes, unit = split_body(bytes(body), media)
        if kind == "labels" and service.engine.quality is None:
            reason = "kind=labels needs kafka.topics.labels (or [labels] without Kafka)"
            raise Problem(422, reason)
        try:
            accepted, dead = await run_in_threadpool(service.ingest, kind, values, ctypes)
        except EngineStopped as exc:
            raise Problem(503, f"the engine is not running: {exc}") from None
        if dead:
            raise Problem(422, {"error": "invalid_events", "errors": _errors(dead, unit)})
        return JSONResponse({"accepted": accepted, "kind": kind})

    return app
