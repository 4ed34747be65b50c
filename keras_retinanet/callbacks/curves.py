"""The training curves of a run (``curves.png``): the losses and the mAP against the epoch, at a glance."""

import io
import math
from typing import Mapping, Optional, Sequence

from ..atomic_files import write_bytes_atomically

# Columns of metrics.csv drawn in the losses panel, in this order, when the run logged them.
LOSS_COLUMNS = (
    "loss",
    "classification_loss",
    "regression_loss",
    "val_loss",
    "val_classification_loss",
    "val_regression_loss",
)
MAP_COLUMN = "mAP"


def _series(rows: Sequence[Mapping[str, object]], column: str):
    """(epochs, values) of the rows that hold a finite number in ``column``."""
    epochs, values = [], []
    for row in rows:
        try:
            value = float(row.get(column))  # type: ignore[arg-type]
            epoch = int(row["epoch"])  # type: ignore[arg-type]
        except (TypeError, ValueError, KeyError):
            continue
        if math.isfinite(value):
            epochs.append(epoch)
            values.append(value)
    return epochs, values


def render_curves(rows: Sequence[Mapping[str, object]], title: Optional[str] = None) -> bytes:
    """A PNG of two panels: the losses (training solid, validation dashed) and the validation mAP.

    Args:
        rows: metrics.csv rows, one per epoch (dicts column -> number or text; 'epoch' 1-based).
        title: the figure's title (e.g. the run folder), or None.

    Returns:
        The PNG file's bytes (1200x450 px).
    """
    # matplotlib takes about a second to import; only drawing needs it. The object API with an Agg canvas
    # leaves pyplot's global state (and the user's backend) alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(12, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    losses, precision = figure.subplots(1, 2)

    drawn = False
    for column in LOSS_COLUMNS:
        epochs, values = _series(rows, column)
        if epochs:
            style = "--" if column.startswith("val_") else "-"
            losses.plot(epochs, values, style, marker="o", markersize=3, label=column)
            drawn = True
    losses.set_title("Losses")
    losses.set_ylabel("loss")
    if drawn:
        losses.legend(loc="upper right", fontsize="small")

    epochs, values = _series(rows, MAP_COLUMN)
    if epochs:
        precision.plot(epochs, values, "-", marker="o", markersize=3, color="tab:green", label="mAP")
        best = max(range(len(values)), key=lambda index: (values[index], -index))  # the first best, as snapshots keep
        precision.plot([epochs[best]], [values[best]], "*", markersize=12, color="tab:red",
                       label=f"best {values[best]:.4f} (epoch {epochs[best]})")  # fmt: skip
        precision.set_ylim(0.0, max(1e-3, max(values)) * 1.1)
        precision.legend(loc="lower right", fontsize="small")
    else:
        precision.text(0.5, 0.5, "no evaluation\n(--no-evaluation, or no validation set)", ha="center", va="center",
                       transform=precision.transAxes)  # fmt: skip
    precision.set_title("Validation mAP")
    precision.set_ylabel("mAP")

    all_epochs = _series(rows, "epoch")[0]
    for axes in (losses, precision):
        axes.set_xlabel("epoch")
        if all_epochs:  # whole epochs, with room either side (a single epoch would get fractional ticks)
            axes.set_xlim(min(all_epochs) - 0.5, max(all_epochs) + 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axes.grid(True, alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_curves(rows: Sequence[Mapping[str, object]], path: str, title: Optional[str] = None) -> str:
    """Draw :func:`render_curves` to ``path`` atomically; returns ``path``."""
    return write_bytes_atomically(render_curves(rows, title=title), path)
