"""What both sides of the speed comparison share: the benchmark image, the timing rule, and weight settings that
put a chosen number of class scores above the 0.05 threshold.

Shared by bench_retinanet.py (this project) and reference_keras_retinanet.py (fizyr's keras-retinanet 1.0.0, in its own
Python 3.8 environment), so both measure the same model on the same work: numpy only, Python 3.8 compatible.
A model with random weights puts millions of scores above 0.05; trained models on a plain image put a few thousand.
"""

import time

import numpy as np

THRESHOLD = 0.05
PLAIN_COUNT = 2000
SATURATED_MIN_COUNT = 500000


def _logits(scores):
    scores = np.clip(scores.astype(np.float64), 1e-12, 1 - 1e-7)
    return np.log(scores) - np.log1p(-scores)


def plain_setting(kernel, bias, predict_scores):
    """Kernel and bias giving about PLAIN_COUNT scores above the threshold.

    Args:
        kernel, bias: the final classification convolution's weights.
        predict_scores: function (kernel, bias) -> the model's class scores on the benchmark image.

    Returns: (kernel, bias, number of scores above the threshold).
    """
    scale = 1.0
    for _ in range(8):
        scores = predict_scores(kernel * scale, bias)
        if np.sum(scores >= 1 - 1e-7) < PLAIN_COUNT:  # the PLAIN_COUNT-th best score is not saturated
            break
        scale *= 0.3
    logits = np.sort(_logits(scores).ravel())[::-1]
    shift = np.log(THRESHOLD / (1 - THRESHOLD)) - 0.5 * (logits[PLAIN_COUNT - 1] + logits[PLAIN_COUNT])
    new_kernel, new_bias = kernel * scale, (bias + shift).astype(bias.dtype)
    return new_kernel, new_bias, int(np.sum(predict_scores(new_kernel, new_bias) > THRESHOLD))


def saturated_setting(kernel, bias, predict_scores):
    """Kernel and bias giving at least SATURATED_MIN_COUNT scores above the threshold (the post-processing worst case)."""
    for scale in (1, 3, 10, 30, 100, 300, 1000):
        count = int(np.sum(predict_scores(kernel * scale, bias) > THRESHOLD))
        if count >= SATURATED_MIN_COUNT:
            return kernel * scale, bias, count
    raise RuntimeError("could not push %d scores above %.2f (reached %d)" % (SATURATED_MIN_COUNT, THRESHOLD, count))


def benchmark_image(shape=(800, 1067), boxes=10, seed=0):
    """A photo-like BGR image as float32 (smoothed noise with flat rectangles), numpy only."""
    rng = np.random.RandomState(seed)
    noise = rng.randint(0, 256, size=(shape[0] // 8 + 2, shape[1] // 8 + 2, 3)).astype(np.float32)
    image = np.kron(noise, np.ones((8, 8, 1), np.float32))[: shape[0], : shape[1]]
    for _ in range(boxes):
        w, h = rng.randint(40, shape[1] // 3), rng.randint(40, shape[0] // 3)
        x, y = rng.randint(0, shape[1] - w), rng.randint(0, shape[0] - h)
        image[y : y + h, x : x + w] = rng.randint(0, 256, size=3)
    return image


def median_seconds(function, runs, warmup=2):
    """Median wall time of ``runs`` calls of ``function`` after ``warmup`` untimed ones.

    Returns: (median seconds, the timed runs rounded to 0.1 ms).
    """
    for _ in range(warmup):
        function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), [round(t, 4) for t in times]
