"""A download progress bar on a text stream, without Keras (the hub loads no TensorFlow).

On a terminal the bar redraws in place (``\\r``) at most ten times a second; in a log file or a
pipe, where ``\\r`` would pile up, it writes the percentage every tenth of the way on one line.
"""

import sys
import time
from typing import Optional, TextIO

BAR_WIDTH = 30
REDRAW_SECONDS = 0.1


def megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


class Progress:
    """Reports bytes received of a download.

    Args:
        label: what is downloaded, e.g. 'ResNet-50-model.keras.h5'.
        total: the expected size in bytes, or None when the server does not say.
        stream: where to write (default ``sys.stderr``).
        enabled: False writes nothing.
    """

    def __init__(self, label: str, total: Optional[int], stream: Optional[TextIO] = None, enabled: bool = True):
        self.label = label
        self.total = total if total and total > 0 else None
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        isatty = getattr(self.stream, "isatty", None)
        self.interactive = bool(isatty and isatty())
        self.received = 0
        self.last_draw = 0.0
        self.last_tenth = 0
        self.finished = False
        if enabled and not self.interactive:
            size = f" ({megabytes(self.total)})" if self.total else ""
            self.stream.write(f"{label}{size}:")
            self.stream.flush()

    def update(self, received: int) -> None:
        """Record that ``received`` bytes have arrived in all."""
        self.received = received
        if not self.enabled:
            return
        if self.interactive:
            now = time.monotonic()
            if now - self.last_draw >= REDRAW_SECONDS:
                self.last_draw = now
                self._draw()
        elif self.total:
            tenth = min(10, received * 10 // self.total)
            while self.last_tenth < tenth:
                self.last_tenth += 1
                self.stream.write(f" {self.last_tenth * 10}%")
                self.stream.flush()

    def _draw(self) -> None:
        if self.total:
            fraction = min(1.0, self.received / self.total)
            filled = int(round(fraction * BAR_WIDTH))
            bar = "=" * filled + "." * (BAR_WIDTH - filled)
            text = f"\r{self.label} [{bar}] {fraction:4.0%} {megabytes(self.received)}/{megabytes(self.total)}"
        else:
            text = f"\r{self.label} {megabytes(self.received)}"
        self.stream.write(text)
        self.stream.flush()

    def finish(self, complete: bool = True) -> None:
        """End the bar's line; ``complete`` False marks an interrupted download."""
        if not self.enabled or self.finished:
            return
        self.finished = True
        if self.interactive:
            self._draw()
        elif not self.total and complete:
            self.stream.write(f" {megabytes(self.received)}")
        self.stream.write(" done\n" if complete else " interrupted\n")
        self.stream.flush()
