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
import logging
import os
import time
from typing import Any, Dict, Optional

import anyio
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .. import __version__
from ..config.tile_settings import TileError
from .errors import BodyLimit, RequestError, error_response
from .schemas import PREDICT_BODY_DOC, DetectionsBody, ErrorBody
from .settings import ServeSettings
from .state import ServeState, read_image_bytes

logger = logging.getLogger(__name__)

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


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
    @app.post("/predict", response_model=DetectionsBody, responses=errors, openapi_extra=PREDICT_BODY_DOC,
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
            "at the model's scale (sliced inference, for small objects in large images); 'auto': the tile the model "
            "was trained on, else its image side"),
        tile_overlap: Optional[str] = Query(None, description="with tile: the share of a tile its neighbours "
                                            "overlap, 0-0.9, or 'auto' (default: auto, at least most training "
                                            "objects' size; 0.2 for a model that recorded none)"),
        tile_merge: Optional[str] = Query(None, description="with tile: 'merge' (default), 'border' or 'nms'"),
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
        except TileError as error:
            raise RequestError(400, str(error)) from None
        job.image = job.prepared = None  # the pixels are not needed any more
        body = await anyio.to_thread.run_sync(result_body, result, limiter=state.limiter)
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


def result_body(result) -> bytes:
    """The response body of one image's Detections: its JSON (floats read back as the same float32)."""
    return result.to_json().encode("utf8")


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

