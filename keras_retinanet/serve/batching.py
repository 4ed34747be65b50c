"""The model's worker: one thread runs every prediction, gathering requests that arrive together into batches.

A network batch is one array, so only images whose *prepared* input (resized to the model's sides, preprocessed) has
the same shape can share it: images of one size always do (a camera's frames, a scanner's pages), and so do images
of one aspect ratio, which resize to the same shape. Images of other shapes in the same gathering run as batches of
their own shape, one after the other; nothing is padded, since padding changes what the network sees at the borders
and so its detections. A request with ``tile`` runs alone (its tiles are already batched inside ``Detector.predict``),
and so does every request of an exported detector (SavedModel, TFLite, ONNX), whose runtime runs it as the
export's own graph.

The worker takes a request as soon as it is idle, with every request queued behind it, up to ``max_batch_size``; while
the batch is not full and other requests are still on their way (being uploaded or decoded), it waits for them up to
``max_batch_wait_ms``. Under load requests queue while a batch runs, so the next batch fills without waiting; a lone
request never waits.

Every batch runs through the detector's one step, ``Detector.run_batch``, as ``Detector.predict`` does: a batch of one
is exactly its computation; in a larger batch the network's last bits may differ from a single run (another order of
floating-point sums), as any batched inference does.
"""

import concurrent.futures
import dataclasses
import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

logger = logging.getLogger(__name__)

_STOP = object()


@dataclasses.dataclass
class Job:
    """One request's work.

    Attributes:
        image: (H, W, 3) uint8 BGR.
        options: keyword arguments of ``Detector.predict`` (score_threshold, max_detections, tile, ...).
        prepared: the image's :class:`~keras_retinanet.inference.detector.Prepared` input where the job may share a
            network batch, else None (run alone).
        future: the result (``Detector.predict``'s Detections), set by the worker; cancelled if it was never started.
        queued_at: ``time.perf_counter()`` when it was queued.
        started_at, finished_at: when the worker started and finished its batch.
        batch_size: how many images its network batch held.
    """

    image: np.ndarray
    options: Dict[str, Any]
    prepared: Any = None
    future: concurrent.futures.Future = dataclasses.field(default_factory=concurrent.futures.Future)
    queued_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    batch_size: int = 1


def can_batch(detector) -> bool:
    """Whether a detector's images may share network batches: a Keras model prepared by its InputTransform (not an
    export, whose runtime may hold a fixed batch, nor a raw-input graph that resizes by itself)."""
    from ..inference.detector import ExportedDetector

    return not isinstance(detector, ExportedDetector)


class Batcher:
    """Runs a detector's predictions in one worker thread, in batches of requests that arrive together.

    Args:
        detector: a :class:`keras_retinanet.inference.Detector`.
        max_batch_size: images in one network batch, at most (1: every request alone).
        max_batch_wait_ms: how long the worker, holding fewer than ``max_batch_size`` requests, waits for more.

    Attributes:
        batchable: whether images may share network batches (see :func:`can_batch`).
        stats: {'batches', 'images', 'batch_sizes' {size: batches}, 'errors'}.
    """

    def __init__(self, detector, max_batch_size: int = 8, max_batch_wait_ms: float = 5.0):
        self.detector = detector
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, float(max_batch_wait_ms)) / 1000.0
        self.batchable = can_batch(detector) and self.max_batch_size > 1
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self.stats: Dict[str, Any] = {"batches": 0, "images": 0, "batch_sizes": Counter(), "errors": 0}
        self.busy = False
        # How many requests are on their way to the queue (being read or decoded); set by the server.
        self.incoming: Callable[[], int] = lambda: 0

    # ------------------------------------------------------------------------------------------------------------
    # the request side

    def prepare(self, image: np.ndarray, options: Dict[str, Any]) -> Job:
        """A job for an image; its network input is prepared here (in the caller's thread) when it may share a
        batch, so that the worker thread only runs the network."""
        job = Job(image=image, options=dict(options))
        if self.batchable and options.get("tile") is None:
            job.prepared = self.detector.prepare(image)
        return job

    def submit(self, job: Job) -> concurrent.futures.Future:
        """Queue a job; its future gets ``Detector.predict``'s result (or its exception)."""
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the model's worker is not running")
        job.queued_at = time.perf_counter()
        self._queue.put(job)
        return job.future

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------------------------------------------------------
    # the worker

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="retinanet-serve-model", daemon=True)
        self._thread.start()

    def stop(self, timeout: Optional[float] = None) -> None:
        """Finish the queued jobs, then end the worker thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    def _gather(self, first: Job) -> Tuple[List[Job], bool]:
        """``first`` and the jobs that join it: those queued, then those arriving within the wait, up to the
        batch size. Returns (jobs, whether the stop sign was met)."""
        jobs = [first]
        if not self.batchable or first.prepared is None:
            return jobs, False
        deadline = time.perf_counter() + self.max_wait
        while len(jobs) < self.max_batch_size:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                # Wait only for requests already in the server (being read or decoded): a lone request never waits.
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self.incoming() <= 0:
                    break
                try:
                    job = self._queue.get(timeout=min(remaining, 0.001))
                except queue.Empty:
                    continue
            if job is _STOP:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            jobs, stopping = self._gather(first)
            self.busy = True
            try:
                self.run(jobs)
            finally:
                self.busy = False
        # Jobs queued behind the stop sign are still answered.
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP:
                self.run([job])

    def run(self, jobs: List[Job]) -> None:
        """Run gathered jobs: those sharing a prepared shape as one network batch each, the others alone."""
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]  # a timed-out job is dropped
        groups: Dict[Any, List[Job]] = defaultdict(list)
        for number, job in enumerate(live):
            if job.prepared is None:
                key = ("alone", number)
            else:
                # The inference model predict() would use (its filter rebuilt for a lower threshold or more
                # detections): jobs share a batch only where they share the model and the input shape.
                key = (id(self._model_of(job)), job.prepared.network_input.shape)
            groups[key].append(job)
        for group in groups.values():
            for start in range(0, len(group), self.max_batch_size):
                self._run_group(group[start : start + self.max_batch_size])

    def _settings_of(self, job: Job) -> Tuple[Optional[float], int]:
        """(score threshold, max detections) ``Detector.predict`` applies to a job, its defaults filled in."""
        score_threshold = job.options.get("score_threshold")
        if score_threshold is None:
            score_threshold = self.detector.default_score_threshold
        max_detections = job.options.get("max_detections")
        return score_threshold, max_detections

    def _model_of(self, job: Job):
        return self.detector.model_for(*self._settings_of(job))

    def _run_group(self, jobs: List[Job]) -> None:
        started = time.perf_counter()
        for job in jobs:
            job.started_at, job.batch_size = started, len(jobs)
        try:
            if jobs[0].prepared is None:
                (job,) = jobs
                results = [self.detector.predict(job.image, **job.options)]
            else:
                results = self._predict_batch(jobs)
        except Exception as error:  # noqa: BLE001 - each request gets its own failure; the worker goes on
            with self._lock:
                self.stats["errors"] += len(jobs)
            logger.exception("prediction failed for a batch of %d", len(jobs))
            for job in jobs:
                job.finished_at = time.perf_counter()
                job.future.set_exception(error)
            return
        finished = time.perf_counter()
        with self._lock:
            self.stats["batches"] += 1
            self.stats["images"] += len(jobs)
            self.stats["batch_sizes"][len(jobs)] += 1
        for job, result in zip(jobs, results):
            job.finished_at = finished
            job.future.set_result(result)

    def _predict_batch(self, jobs: List[Job]) -> List[Any]:
        """``Detector.predict`` of each job's whole image, the prepared inputs run in one batch through
        ``Detector.run_batch`` with the group's loosest settings (the jobs of a group share the inference model, so
        their settings differ only in what is kept), then each job's own threshold and cap."""
        settings = [self._settings_of(job) for job in jobs]
        thresholds = [threshold for threshold, _ in settings]
        counts = [count for _, count in settings]
        loosest_threshold = None if None in thresholds else min(thresholds)
        largest_count = None if None in counts else max(counts)
        results = self.detector.run_batch([job.prepared for job in jobs], loosest_threshold, largest_count)
        kept = []
        for (threshold, count), result in zip(settings, results):
            # The run's cap bound for this job too where its weakest detection passes this job's threshold.
            weakest = float(result.scores.min()) if len(result) else None
            bound = result.capped and (threshold is None or (weakest is not None and weakest > threshold))
            if threshold is not None:
                result = result[result.scores > threshold]
            over = count is not None and len(result) > count
            kept.append(dataclasses.replace(result[:count] if over else result, capped=bound or over))
        return kept

    def snapshot(self) -> Dict[str, Any]:
        """The counters, for /health: batches run, images, batch sizes, errors, jobs queued, whether it is busy."""
        with self._lock:
            stats = dict(self.stats, batch_sizes={str(k): v for k, v in sorted(self.stats["batch_sizes"].items())})
        stats["queued"] = self.queued
        stats["busy"] = self.busy
        return stats
