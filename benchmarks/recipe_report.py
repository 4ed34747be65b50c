"""bench_recipe.py's table (one row per dataset, start and model) and its curves picture."""

from recipe_data import DATASETS

PAIR = ("keras-retinanet", "modern")


def summarise(results):
    """One row per (dataset, init, model): the mean and each seed's final mAP@0.5 and COCO AP, seconds per step."""
    import numpy as np

    rows = {}
    for result in results:
        rows.setdefault((result["dataset"], result["init"], result["model"]), []).append(result)
    table = []
    for (dataset, init, model), runs in rows.items():
        table.append({
            "dataset": dataset, "init": init, "model": model, "flags": runs[0]["flags"], "steps": runs[0]["steps"],
            "seeds": [run["seed"] for run in runs],
            "mAP50": float(np.mean([run["mAP50"][-1] for run in runs])),
            "mAP50_per_seed": [round(run["mAP50"][-1], 4) for run in runs],
            "coco_AP": float(np.mean([run["coco_AP"][-1] for run in runs])),
            "coco_AP_per_seed": [round(run["coco_AP"][-1], 4) for run in runs],
            "seconds_per_step": float(np.mean([run["seconds_per_step"] for run in runs])),
            "mAP50_curve": [float(v) for v in np.mean([run["mAP50"] for run in runs], axis=0)],
        })  # fmt: skip
    return table


def draw_curves(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(row["dataset"], row["init"]) for row in table})
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), squeeze=False)
    for axis, (dataset, init) in zip(axes[0], panels):
        for row in table:
            if (row["dataset"], row["init"]) != (dataset, init):
                continue
            steps = DATASETS[dataset][0]
            x = [steps * (index + 1) for index in range(len(row["mAP50_curve"]))]
            bold = row["model"] in PAIR
            axis.plot(x, row["mAP50_curve"], label=row["model"], linewidth=2.2 if bold else 0.9,
                      linestyle="-" if bold else "--")  # fmt: skip
        axis.set_title(f"{dataset}, {'random weights' if init == 'random' else 'fine-tuned'}")
        axis.set_xlabel("steps")
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("mAP@0.5 (mean of seeds)")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
