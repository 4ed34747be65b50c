"""One server's state and its request checks: the detector, its batcher, the limits, the requests in the server."""

import math
from typing import Any, Dict, Optional

import anyio
from fastapi import Request
from starlette.requests import ClientDisconnect

from ..config.tile_settings import TileError
from ..inference.slicing import DEFAULT_MERGE, TileOptions, tile_starts
from .batching import Batcher, Job
from .errors import RequestError
from .images import UploadError, decode_image
from .settings import ServeSettings

PREDICT_PARAMETERS = ("score_threshold", "max_detections", "tile", "tile_overlap", "tile_merge", "whole_image")
NOT_IMAGE_TYPES = ("text/", "application/json", "application/xml")


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
        try:
            options["tile"] = TileOptions.from_text(tile, overlap=overlap, merge=merge or DEFAULT_MERGE,
                                                    whole_image=bool(whole)).resolved(detector.spec)  # fmt: skip
        except TileError as error:
            raise RequestError(400, str(error)) from None
        return options

    def check_tiles(self, options: Dict[str, Any], height: int, width: int) -> None:
        """400 when the request's tiles on this image are more than ``max_tiles``."""
        tiles = options.get("tile")
        if tiles is None:
            return
        count = len(tile_starts(height, tiles.height, tiles.overlap)) * len(tile_starts(width, tiles.width, tiles.overlap))
        if count > self.settings.max_tiles:
            raise RequestError(400, f"tile {tiles.height}x{tiles.width} with overlap {tiles.overlap:g} cuts this "
                               f"{width}x{height} image into {count} tiles; the server allows {self.settings.max_tiles} "
                               "(retinanet-serve --max-tiles): ask for larger tiles")  # fmt: skip

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
