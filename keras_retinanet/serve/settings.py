"""What a server allows and how it batches: one frozen dataclass, filled by ``retinanet-serve``'s flags."""

import dataclasses
import json
from typing import Any, Dict

MEGABYTE = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """The limits and batching of a server.

    Attributes:
        max_batch_size: requests run through the network together, at most (1: no batching).
        max_batch_wait_ms: how long the model's worker waits for more requests once it holds one and the batch is
            not full (0: it takes what is queued, and waits for nothing).
        max_queue: requests in the server at once (being read, decoded, queued or run); one more gets 503 with
            ``Retry-After``.
        max_upload_bytes: the largest request body; a larger one gets 413.
        max_image_pixels: the largest image (width x height) decoded; a larger one gets 413.
        timeout_s: a request that has no answer after this long (its upload, its wait and its prediction) gets 504.
        max_tiles: the most tiles one request may ask for (``tile`` and ``tile_overlap`` on its image); more: 400.
        decode_threads: threads decoding and preparing uploads beside the model's worker (0: the cores).
    """

    max_batch_size: int = 8
    max_batch_wait_ms: float = 5.0
    max_queue: int = 64
    max_upload_bytes: int = 32 * MEGABYTE
    max_image_pixels: int = 100_000_000
    timeout_s: float = 60.0
    max_tiles: int = 1024
    decode_threads: int = 0

    def __post_init__(self):
        checks = {
            "max_batch_size": self.max_batch_size >= 1,
            "max_batch_wait_ms": self.max_batch_wait_ms >= 0,
            "max_queue": self.max_queue >= 1,
            "max_upload_bytes": self.max_upload_bytes >= 1,
            "max_image_pixels": self.max_image_pixels >= 1,
            "timeout_s": self.timeout_s > 0,
            "max_tiles": self.max_tiles >= 1,
            "decode_threads": self.decode_threads >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"serve setting {name} out of range: {getattr(self, name)}")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "ServeSettings":
        return cls(**json.loads(text))
