"""Showing evaluation results: the per-class AP table in keras-retinanet's wording, precision-recall plots, and
the per-class AP bar chart."""

import io
import os
import re
import sys
from typing import Any, Callable, Dict, Optional, Sequence, TextIO, Tuple

import numpy as np

from ..atomic_files import write_bytes_atomically
from .average_precision import PrecisionRecall, mean_average_precision

# Class names longer than this are cut in the bar chart, so that the bars keep most of the width.
_MAX_NAME_CHARS = 32


def print_evaluation(
    average_precisions: Dict[int, Tuple[float, float]],
    label_to_name: Callable[[int], str],
    inference_time: Optional[float] = None,
    num_images: Optional[int] = None,
    file: Optional[TextIO] = None,
) -> Tuple[float, float]:
    """Print the per-class AP table and the mAPs in the wording of keras-retinanet's evaluate command.

    Args:
        average_precisions: {label: (ap, num_annotations)}.
        label_to_name: callable label -> class name.
        inference_time: mean seconds per image, printed when given with ``num_images``.
        num_images: number of images evaluated.
        file: stream to write to (default stdout).

    Returns:
        (weighted_mAP, mAP) as :func:`mean_average_precision`.
    """
    file = file or sys.stdout
    for label, (average_precision, num_annotations) in average_precisions.items():
        print(
            "{:.0f} instances of class {} with average precision: {:.4f}".format(
                num_annotations, label_to_name(label), average_precision
            ),
            file=file,
        )
    weighted, unweighted = mean_average_precision(average_precisions)
    if sum(num for _, num in average_precisions.values()) == 0:
        print("No test instances found.", file=file)
        return weighted, unweighted
    if inference_time is not None and num_images is not None:
        print("Inference time for {:.0f} images: {:.4f}".format(num_images, inference_time), file=file)
    print("mAP using the weighted average of precisions among classes: {:.4f}".format(weighted), file=file)
    print("mAP: {:.4f}".format(unweighted), file=file)
    return weighted, unweighted


def _safe_file_name(text) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "class"


def empty_curve_message(curve: PrecisionRecall) -> str:
    """What a precision-recall plot without a curve says: the class has no annotations, or no detections."""
    if curve.num_annotations > 0:
        return "no detections ({:.0f} annotations)".format(curve.num_annotations)
    return "no annotations of this class"


def save_precision_recall_plots(
    curves: Dict[int, PrecisionRecall],
    output_dir: str,
    label_to_name: Optional[Callable[[int], str]] = None,
    dpi: int = 80,
) -> Dict[int, str]:
    """Write one precision-recall plot per class as a PNG.

    Each plot shows the raw curve and its interpolated envelope (whose area is the AP). Uses matplotlib's Agg
    canvas directly, so no display and no pyplot global state are involved.

    Args:
        curves: {label: PrecisionRecall} as ``evaluate(..., return_curves=True)`` returns.
        output_dir: folder to write into (created if missing).
        label_to_name: callable label -> class name for titles and file names; None uses the label.
        dpi: resolution of the 6x4.5 inch figure.

    Returns:
        {label: path of the PNG written}, file names ``precision_recall_{label}_{name}.png``.
    """
    # matplotlib takes about a second to import; only writing plots needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    os.makedirs(output_dir, exist_ok=True)
    paths = {}
    for label, curve in curves.items():
        name = label_to_name(label) if label_to_name else str(label)
        figure = Figure(figsize=(6, 4.5), dpi=dpi)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot(1, 1, 1)
        if len(curve.recall):
            # The envelope over the sentinel-extended curve is what _compute_ap integrates.
            recall = np.concatenate(([0.0], curve.recall, [1.0]))
            envelope = np.maximum.accumulate(np.concatenate(([0.0], curve.precision, [0.0]))[::-1])[::-1]
            axes.plot(curve.recall, curve.precision, ".-", color="tab:blue", label="precision")
            axes.step(recall, envelope, where="pre", color="tab:orange", label="interpolated (area = AP)")
            axes.legend(loc="lower left")
        else:
            axes.text(0.5, 0.5, empty_curve_message(curve), ha="center", va="center")
        axes.set_xlim(0.0, 1.0)
        axes.set_ylim(0.0, 1.05)
        axes.set_xlabel("recall")
        axes.set_ylabel("precision")
        axes.grid(True, alpha=0.3)
        axes.set_title(
            "{}: AP {:.4f} ({:.0f} instances)".format(name, curve.average_precision, curve.num_annotations)
        )
        path = os.path.join(output_dir, f"precision_recall_{label}_{_safe_file_name(name)}.png")
        figure.savefig(path)
        paths[label] = path
    return paths


def _bar_label(row: Dict[str, Any]) -> str:
    name = str(row["name"])
    if len(name) > _MAX_NAME_CHARS:
        name = name[: _MAX_NAME_CHARS - 3] + "..."
    return "{} ({:.0f})".format(name, row["num_annotations"])


def chart_order(classes: Sequence[Dict[str, Any]]) -> list:
    """The rows top to bottom: best AP first; equal APs by label, so the chart does not change between runs."""
    return sorted(classes, key=lambda row: (-row["average_precision"], row.get("label", 0)))


def save_per_class_ap_chart(
    classes: Sequence[Dict[str, Any]],
    mean_ap: float,
    path: str,
    title: str = "Per-class average precision",
    mean_label: str = "mAP",
    dpi: int = 100,
) -> str:
    """Write one PNG with each class's AP as a horizontal bar, best on top, and the mean AP as a line.

    Each bar is labelled "name (annotations)" and carries its AP; classes without annotations are grey.
    The figure grows with the number of classes so that every name stays readable. Written atomically.

    Args:
        classes: rows {name, num_annotations, average_precision, label} (as ``run_evaluation`` gives them).
        mean_ap: the mean drawn as a vertical line.
        path: the PNG to write.
        title: the figure title.
        mean_label: what the line is called in the legend (e.g. "mAP", "COCO AP@[.5:.95]").
        dpi: resolution.

    Returns:
        path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = chart_order(classes)
    figure = Figure(figsize=(8.0, max(2.5, 1.2 + 0.3 * len(rows))), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    positions = np.arange(len(rows))
    values = [row["average_precision"] for row in rows]
    colors = ["tab:blue" if row["num_annotations"] > 0 else "tab:gray" for row in rows]
    axes.barh(positions, values, height=0.7, color=colors)
    for position, value in zip(positions, values):
        axes.text(value + 0.01, position, "{:.4f}".format(value), va="center", fontsize=8)
    axes.set_yticks(positions, labels=[_bar_label(row) for row in rows], fontsize=9)
    axes.set_ylim(len(rows) - 0.5, -0.5)  # the first row (best AP) on top
    axes.axvline(mean_ap, color="tab:red", linestyle="--", label="{} {:.4f}".format(mean_label, mean_ap))
    axes.set_xlim(0.0, 1.12)  # room for the value of a bar at AP 1
    axes.set_xticks(np.linspace(0.0, 1.0, 6))
    axes.set_xlabel("average precision")
    axes.set_title(title)
    axes.grid(True, axis="x", alpha=0.3)
    axes.legend(loc="lower right", fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return write_bytes_atomically(buffer.getvalue(), path)
