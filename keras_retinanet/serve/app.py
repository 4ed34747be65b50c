"""The HTTP application: ``create_app(detector)`` is a FastAPI app serving the detector and a page to look at it.

Routes:
    POST /predict   the image as the raw body (any image type OpenCV reads) or as multipart field ``image``; query
                    parameters ``score_threshold``, ``max_detections``, ``tile``, ``tile_overlap``, ``tile_merge``,
                    ``whole_image``; answers ``Detector.predict``'s result as JSON, with the image's width and height.
    GET  /model     the detector's spec, its defaults and the server's limits.
    GET  /health    200 with the worker's counters once the model is loaded and warmed up.
    GET  /          the page (static/index.html): drop an image, look at its detections.
    GET  /docs      the OpenAPI page FastAPI makes (the schema at /openapi.json).

Every error is a 4xx or 5xx with a one-line JSON body ``{"error": "..."}``: 400 bad parameters or a body that is
not an image, 413 a body or image over the limits, 415 a text or JSON body, 503 (with ``Retry-After``) when
``max_queue`` requests are already in the server, 504 when a request is not answered within ``timeout_s``.

Uploads are read and decoded, and the network input prepared, in a pool of threads beside the event loop; the model
runs in the :class:`~keras_retinanet.serve.batching.Batcher`'s one worker thread; the JSON is written in the pool.
The event loop only moves bytes, so /health answers while predictions run.
"""

import asyncio
import contextlib
import json
import logging
import math
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import anyio
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .. import __version__
from ..inference.slicing import MERGE_RULES, Tiling, TilingError, tile_starts
from .batching import Batcher, Job
from .images import UploadError, decode_image
from .settings import ServeSettings

logger = logging.getLogger(__name__)

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
PREDICT_PARAMETERS = ("score_threshold", "max_detections", "tile", "tile_overlap", "tile_merge", "whole_image")
# The smallest tile side a request may ask for, in the image's pixels (each tile is resized to the model's sides).
MIN_TILE = 16
NOT_IMAGE_TYPES = ("text/", "application/json", "application/xml")


class RequestError(Exception):
    """A request the server refuses: a status, a one-line message and optional headers."""

    def __init__(self, status: int, message: str, headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    """``{"error": message}`` on one line (newlines in a message become spaces)."""
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


class Detections(BaseModel):
    """The detections of one image, best first, in the image's own pixels."""

    boxes: List[List[float]] = Field(description="[x1, y1, x2, y2] of each detection, in the image's pixels")
    scores: List[float] = Field(description="each detection's score, best first")
    labels: List[int] = Field(description="each detection's label (class index)")
    names: List[str] = Field(description="each detection's class name")
    counts: Dict[str, int] = Field(description="detections per class name, in label order")
    width: int = Field(description="the image's width in pixels")
    height: int = Field(description="the image's height in pixels")


class ErrorBody(BaseModel):
    error: str


class BodyLimit:
    """ASGI middleware: a request body longer than ``max_bytes`` gets 413, by its Content-Length before any byte is
    read, or as soon as a body sent without one (chunked) passes the limit."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await error_response(400, "Content-Length is not a number")(scope, receive, send)
                return
            if int(length) > self.max_bytes:
                response = error_response(413, f"body of {int(length)} bytes is larger than the server's "
                                          f"{self.max_bytes} bytes (retinanet-serve --max-upload-mb)")
                await response(scope, receive, send)
                return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestError(413, f"body larger than the server's {self.max_bytes} bytes "
                                       "(retinanet-serve --max-upload-mb)")
            return message

        await self.app(scope, limited_receive, send)


def json_float32(values: np.ndarray) -> list:
    """float32 values as the shortest decimals that read back as the same float32 ('0.87', not
    '0.8700000047683716'): ``np.float32(json_value)`` is the detector's value, exactly."""
    return [float(str(value)) for value in np.asarray(values, dtype=np.float32).ravel()]


def result_json(result: Dict[str, Any], width: int, height: int) -> bytes:
    """The response body of one image's result (``Detector.predict``'s dict)."""
    boxes = json_float32(result["boxes"])
    body = {
        "boxes": [boxes[i : i + 4] for i in range(0, len(boxes), 4)],
        "scores": json_float32(result["scores"]),
        "labels": [int(label) for label in result["labels"]],
        "names": [str(name) for name in result["names"]],
        "counts": {str(name): int(count) for name, count in result["counts"].items()},
        "width": int(width),
        "height": int(height),
    }
    return json.dumps(body, separators=(",", ":")).encode("utf8")


def parse_tile(text: str) -> Tuple[int, int]:
    """'640' or '480x640' (height x width) as (height, width)."""
    parts = str(text).lower().split("x")
    try:
        sides = [int(part) for part in parts]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2):
        raise RequestError(400, f"tile must be a size in pixels, N or HEIGHTxWIDTH (e.g. 640 or 480x640), got {text!r}")
    if len(sides) == 1:
        sides = sides * 2
    if min(sides) < MIN_TILE or max(sides) > 100_000:
        raise RequestError(400, f"tile sides must lie between {MIN_TILE} and 100000 pixels, got {text!r}")
    return sides[0], sides[1]


class ServeState:
    """What one app holds: the detector, its batcher, the limits, the requests in the server, timings."""

    def __init__(self, detector, settings: ServeSettings, model_name: str):
        self.detector = detector
        self.settings = settings
        self.model_name = model_name
        self.batcher = Batcher(detector, settings.max_batch_size, settings.max_batch_wait_ms)
        self.limiter: Optional[anyio.CapacityLimiter] = None
        self.in_flight = 0
        self.incoming = 0  # requests being read or decoded, not yet queued: the batcher waits for these only
        self.batcher.incoming = lambda: self.incoming
        self.answered = 0
        self.refused = 0
        self.seconds_per_request = 0.0  # a moving average of the model's time per request, for Retry-After
        self.ready = False

    def check_options(self, params) -> Dict[str, Any]:
        """``Detector.predict``'s options from the query parameters, checked; tile counts are checked once the
        image's size is known (:meth:`check_tiles`)."""
        unknown = sorted(set(params) - set(PREDICT_PARAMETERS))
        if unknown:
            raise RequestError(400, f"unknown query parameter {unknown[0]!r} (known: {', '.join(PREDICT_PARAMETERS)})")
        detector = self.detector
        options: Dict[str, Any] = {}
        threshold = params.get("score_threshold")
        if threshold is not None:
            if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
                raise RequestError(400, f"score_threshold must lie between 0 and 1, got {threshold}")
            floor = detector.filter_threshold
            if threshold < floor:
                raise RequestError(400, f"score_threshold {threshold} is below the model's own filter threshold {floor:g}, "
                                   "whose lower scores it never gives; start the server with --score-threshold "
                                   f"{threshold} to serve them")
            options["score_threshold"] = float(threshold)
        count = params.get("max_detections")
        if count is not None:
            if not 1 <= count <= detector.max_detections:
                raise RequestError(400, f"max_detections must lie between 1 and the model's {detector.max_detections} "
                                   f"(start the server with --max-detections N for more), got {count}")
            options["max_detections"] = int(count)
        tile = params.get("tile")
        overlap, merge, whole = params.get("tile_overlap"), params.get("tile_merge"), params.get("whole_image")
        if tile is None:
            for name, value in (("tile_overlap", overlap), ("tile_merge", merge), ("whole_image", whole or None)):
                if value is not None:
                    raise RequestError(400, f"{name} applies to sliced inference only: give tile too")
            return options
        overlap = 0.2 if overlap is None else overlap
        if not (math.isfinite(overlap) and 0.0 <= overlap <= 0.9):
            raise RequestError(400, f"tile_overlap must lie between 0 and 0.9, got {overlap}")
        if merge is not None and merge not in MERGE_RULES:
            raise RequestError(400, f"tile_merge must be one of {', '.join(MERGE_RULES)}, got {merge!r}")
        try:
            Tiling.of(parse_tile(tile), overlap=overlap, merge=merge or "border", whole_image=bool(whole))
        except TilingError as error:
            raise RequestError(400, str(error)) from None
        options.update(tile=parse_tile(tile), tile_overlap=float(overlap), tile_merge=merge or "border",
                       whole_image=bool(whole))  # fmt: skip
        return options

    def check_tiles(self, options: Dict[str, Any], height: int, width: int) -> None:
        """400 when the request's tiles on this image are more than ``max_tiles``."""
        if options.get("tile") is None:
            return
        (tile_height, tile_width), overlap = options["tile"], options["tile_overlap"]
        count = len(tile_starts(height, tile_height, overlap)) * len(tile_starts(width, tile_width, overlap))
        if count > self.settings.max_tiles:
            raise RequestError(400, f"tile {tile_height}x{tile_width} with overlap {overlap:g} cuts this {width}x{height} "
                               f"image into {count} tiles; the server allows {self.settings.max_tiles} "
                               "(retinanet-serve --max-tiles): ask for larger tiles")

    def retry_after(self) -> str:
        """Seconds a refused client should wait: the requests ahead of it at the model's recent pace."""
        per_request = self.seconds_per_request or 1.0  # the model's time per image, batches shared out
        return str(max(1, min(600, int(math.ceil(self.in_flight * per_request)))))

    def decode_and_prepare(self, data: bytes, options: Dict[str, Any]) -> Job:
        """In a pool thread: the image, its size checked, and the job (network input prepared where it may be
        batched)."""
        try:
            image = decode_image(data, self.settings.max_image_pixels)
        except UploadError as error:
            raise RequestError(error.status, str(error)) from None
        self.check_tiles(options, image.shape[0], image.shape[1])
        return self.batcher.prepare(image, options)


async def read_image_bytes(request: Request) -> bytes:
    """The image's bytes: multipart field ``image``, or the raw body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=16)
        except (RequestError, ClientDisconnect):
            raise
        except Exception as error:  # noqa: BLE001 - starlette's multipart errors: a bad body, said in one line
            detail = getattr(error, "detail", None) or str(error) or type(error).__name__
            raise RequestError(400, f"cannot read the multipart body: {detail}") from None
        try:
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                raise RequestError(400, "the multipart body has no file field 'image' (send the image as field 'image', "
                                   "or as the raw body)")
            return await upload.read()
        finally:
            await form.close()
    if content_type.startswith(NOT_IMAGE_TYPES):
        raise RequestError(415, f"Content-Type {content_type} is not an image: send the image's bytes as the body "
                           "(Content-Type image/jpeg, image/png, ...) or as multipart field 'image'")
    return await request.body()


def create_app(detector, settings: Optional[ServeSettings] = None, model_name: Optional[str] = None,
               warm_up: bool = True) -> FastAPI:
    """The FastAPI application serving ``detector``.

    Args:
        detector: a :class:`keras_retinanet.inference.Detector` (``load_detector``'s).
        settings: limits and batching (default: :class:`ServeSettings`'s defaults).
        model_name: what /model and the page call the model (default: its backbone).
        warm_up: run the model once (and once batched) before the first request, so that /health means ready and the
            first requests do not pay the graph tracing.

    Returns:
        the app; its ``state.serve`` is the :class:`ServeState`. Run it with uvicorn (``retinanet-serve`` does).
    """
    settings = settings or ServeSettings()
    state = ServeState(detector, settings, model_name or detector.spec.backbone)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state.limiter = anyio.CapacityLimiter(settings.decode_threads or os.cpu_count() or 1)
        state.batcher.start()
        if warm_up:
            # In the model's worker thread's place: nothing else runs the model before the server listens.
            await anyio.to_thread.run_sync(_warm_up, state)
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            await anyio.to_thread.run_sync(state.batcher.stop)

    app = FastAPI(
        title="retinanet-serve",
        version=__version__,
        description="A RetinaNet detector (keras3-retinanet) over HTTP. POST an image to /predict; the page at / "
        "shows the detections.",
        lifespan=lifespan,
    )
    app.state.serve = state
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)

    @app.exception_handler(RequestError)
    async def _request_error(request, error: RequestError):
        return error_response(error.status, error.message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        value = first.get("input")
        return error_response(400, f"{where}: {first.get('msg', 'invalid')}" + (f", got {value!r}" if value else ""))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request, error: ClientDisconnect):
        return error_response(400, "the client went away before sending the whole body")  # nobody reads it

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, error: StarletteHTTPException):
        return error_response(error.status_code, error.detail, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request, error: Exception):
        logger.exception("unexpected error")
        return error_response(500, f"internal error: {type(error).__name__}: {error}")

    errors = {code: {"model": ErrorBody} for code in (400, 413, 415, 503, 504)}
    body_doc = {
        "requestBody": {
            "required": True,
            "description": "The image: its bytes as the body (image/jpeg, image/png, image/bmp, image/tiff, image/webp, "
            "...) or a multipart form with the file in field 'image'.",
            "content": {
                "image/*": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {"type": "object", "required": ["image"],
                               "properties": {"image": {"type": "string", "format": "binary"}}}
                },
            },
        }
    }

    @app.post("/predict", response_model=Detections, responses=errors, openapi_extra=body_doc,
              summary="Detect objects in an image")  # fmt: skip
    async def predict(
        request: Request,
        score_threshold: Optional[float] = Query(
            None, description="keep detections scoring above this (default: the server's, the model's own unless "
            "--score-threshold); not below the model's filter threshold"),
        max_detections: Optional[int] = Query(
            None, description="at most this many detections (default and maximum: the model's own, 300 unless "
            "--max-detections)"),
        tile: Optional[str] = Query(
            None, description="slice the image into tiles of this size in its pixels, N or HEIGHTxWIDTH, each detected "
            "at the model's scale (sliced inference, for small objects in large images)"),
        tile_overlap: Optional[float] = Query(None, description="with tile: the share of a tile its neighbours "
                                              "overlap, 0-0.9 (default 0.2)"),
        tile_merge: Optional[str] = Query(None, description="with tile: 'border' (default), 'nms' or 'merge'"),
        whole_image: Optional[bool] = Query(None, description="with tile: also detect on the whole image"),
    ):
        """The detections of one image, as ``load_detector(MODEL).predict(image, ...)`` gives them."""
        arrived = time.perf_counter()
        params = dict(score_threshold=score_threshold, max_detections=max_detections, tile=tile,
                      tile_overlap=tile_overlap, tile_merge=tile_merge, whole_image=whole_image)  # fmt: skip
        for name in request.query_params:
            params.setdefault(name, request.query_params[name])  # unknown ones, for the error
        options = state.check_options({name: value for name, value in params.items() if value is not None})
        if state.in_flight >= settings.max_queue:
            state.refused += 1
            raise RequestError(503, f"the server is busy: {state.in_flight} requests in it (retinanet-serve "
                               "--max-queue); retry later", {"Retry-After": state.retry_after()})
        state.in_flight += 1
        job = None
        try:
            job, decoded, body = await asyncio.wait_for(_answer(request, options), settings.timeout_s)
        except asyncio.TimeoutError:
            raise RequestError(504, f"no answer within the server's {settings.timeout_s:g} s (retinanet-serve "
                               "--timeout)") from None
        finally:
            state.in_flight -= 1
        state.answered += 1
        per_image = (job.finished_at - job.started_at) / max(1, job.batch_size)
        state.seconds_per_request = per_image if not state.seconds_per_request else (
            0.8 * state.seconds_per_request + 0.2 * per_image)  # fmt: skip
        timing = (f"read;dur={1000 * (decoded - arrived):.1f}, queue;dur={1000 * (job.started_at - job.queued_at):.1f}, "
                  f"model;dur={1000 * (job.finished_at - job.started_at):.1f}")  # fmt: skip
        return Response(body, media_type="application/json",
                        headers={"Server-Timing": timing, "X-Batch-Size": str(job.batch_size)})  # fmt: skip

    async def _answer(request: Request, options: Dict[str, Any]):
        state.incoming += 1
        try:
            data = await read_image_bytes(request)
            job = await anyio.to_thread.run_sync(state.decode_and_prepare, data, options, limiter=state.limiter)
            del data
            decoded = time.perf_counter()
            future = state.batcher.submit(job)
        finally:
            state.incoming -= 1
        try:
            result = await asyncio.wrap_future(future)  # cancelled on timeout: a job not yet started is dropped
        except TilingError as error:
            raise RequestError(400, str(error)) from None
        height, width = job.image.shape[:2]
        job.image = job.prepared = None  # the pixels are not needed any more
        body = await anyio.to_thread.run_sync(result_json, result, width, height, limiter=state.limiter)
        return job, decoded, body

    @app.get("/model", summary="The detector's spec, defaults and the server's limits")
    async def model_info():
        spec = detector.spec.to_dict()
        spec.update(
            model=state.model_name,
            format=getattr(detector, "format", "keras"),
            package_version=__version__,
            defaults={"score_threshold": detector.default_score_threshold, "max_detections": detector.max_detections,
                      "filter_threshold": detector.filter_threshold},
            limits=dict(settings.to_dict(), batching=state.batcher.batchable),
        )
        return JSONResponse(spec)

    @app.get("/health", summary="200 once the model is loaded; the worker's counters")
    async def health():
        body = {"status": "ok" if state.ready else "starting", "in_flight": state.in_flight,
                "answered": state.answered, "refused": state.refused, **state.batcher.snapshot()}  # fmt: skip
        return JSONResponse(body, status_code=200 if state.ready else 503)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(os.path.join(STATIC_DIR, "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _warm_up(state: ServeState) -> None:
    """Run the model before requests come, so that /health means ready and the first requests do not pay for tracing
    its graph: a Keras model on two network inputs differing in every dimension, batch included (TensorFlow then
    traces one graph for every shape), an export on one blank image."""
    detector = state.detector
    spec = detector.spec
    started = time.perf_counter()
    if state.batcher.batchable:
        model = detector.model_for(detector.default_score_threshold, None)
        low, high = sorted((int(spec.image_min_side), int(spec.image_max_side)))
        for batch, height, width in ((1, low, high), (2, high + 32, max(32, low - 32) if low > 64 else low + 32)):
            model.predict_on_batch(np.zeros((batch, height, width, 3), np.float32))
    else:
        detector.predict(np.full((spec.image_min_side, spec.image_max_side, 3), 114, np.uint8))
    logger.debug("warmed up in %.1f s", time.perf_counter() - started)

