"""The inference figures of bench_retinanet.py for torchvision's RetinaNet, for a comparison in one run.

Runs in its own environment, never this project's: a virtual environment with torch and torchvision
(python3 -m venv /path/to/venv-torch; /path/to/venv-torch/bin/pip install torch torchvision). Builds
torchvision.models.detection.retinanet_resnet50_fpn (ResNet50, FPN P3-P7 with P6 from the FPN's P5, four 256-wide
conv layers per head, 9 anchors) with random weights (nothing is downloaded) and num_classes=80: torchvision's
RetinaNet scores every class with its own sigmoid and has no background class, so 80 gives the same 720-channel
classification output as ours (its COCO default of 91 only counts the gaps in COCO's category ids).

The benchmark image (800x1067, BGR) is given as torchvision expects it: a list of one CHW float tensor, RGB in
[0, 1]. The model's own transform normalises it, resizes it with min_size=800, max_size=1333 (scale 1 here, so the
800 px short side is kept) and pads the batch to 800x1088 (a multiple of 32). Post-processing is torchvision's,
with this project's settings: scores above 0.05, the top 1000 per level, class-wise NMS at IoU 0.5, at most 300
detections.

As in bench_retinanet.py, the final classification kernel and bias are set so that about 2000 class-anchor scores
pass 0.05 (bench_shared.plain_setting), so the post-processing gets the same amount of work.

Prints one JSON line: end to end (the BGR image in, detections in original image coordinates out), the network
alone (backbone, FPN and heads on the transformed batch), medians of --runs after warm-up, under
torch.inference_mode with torch.set_num_threads(--threads).

Run: /path/to/venv-torch/bin/python benchmarks/reference_torchvision.py [--runs 5] [--threads 2]
"""

import argparse
import json
import os
import resource

# first: it reads the load average at the start
from bench_shared import THRESHOLD, benchmark_image, median_seconds, plain_setting

import numpy as np
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.detection import retinanet_resnet50_fpn

NUM_CLASSES = 80
MAX_DETECTIONS = 300
IOU_THRESHOLD = 0.5
CANDIDATES_PER_LEVEL = 1000
MIN_SIZE, MAX_SIZE = 800, 1333


def build_model():
    """retinanet_resnet50_fpn with random weights, in eval mode, post-processing set as described above."""
    model = retinanet_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=NUM_CLASSES,
        min_size=MIN_SIZE,
        max_size=MAX_SIZE,
        score_thresh=THRESHOLD,
        nms_thresh=IOU_THRESHOLD,
        detections_per_img=MAX_DETECTIONS,
        topk_candidates=CANDIDATES_PER_LEVEL,
    )
    return model.eval()


def image_tensor(image_bgr):
    """(H, W, 3) BGR float in [0, 255] -> (3, H, W) RGB float32 tensor in [0, 1], what torchvision detectors take."""
    rgb = np.ascontiguousarray(image_bgr[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(rgb).div_(255.0)


def network(model, batch):
    """Backbone, FPN and both heads on a transformed (N, 3, H, W) batch.

    Returns: dict of cls_logits (N, anchors, classes) and bbox_regression (N, anchors, 4).
    """
    return model.head(list(model.backbone(batch).values()))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-flops", action="store_true", help="skip counting the network's FLOPs")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)

    image = benchmark_image()  # (800, 1067, 3) BGR float32
    model = build_model()
    with torch.inference_mode():
        batch = model.transform([image_tensor(image)])[0].tensors
    result = {
        "torchvision": torchvision.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "image": list(image.shape[:2]),
        "network_input": list(batch.shape[2:]),
        "num_classes": NUM_CLASSES,
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "decoder": {"score_threshold": THRESHOLD, "iou_threshold": IOU_THRESHOLD, "max_detections": MAX_DETECTIONS,
                    "candidates_per_level": CANDIDATES_PER_LEVEL, "class_specific": True},
    }

    layer = model.head.classification_head.cls_logits

    def set_weights(kernel, bias):
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(np.asarray(kernel, np.float32)))
            layer.bias.copy_(torch.from_numpy(np.asarray(bias, np.float32)))

    def predict_scores(kernel, bias):
        set_weights(kernel, bias)
        with torch.inference_mode():
            return torch.sigmoid(network(model, batch)["cls_logits"].double()).numpy()

    kernel, bias = layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy()
    kernel, bias, result["scores_above_0.05"] = plain_setting(kernel, bias, predict_scores)
    set_weights(kernel, bias)

    def end_to_end():
        with torch.inference_mode():
            detections = model([image_tensor(image)])[0]
        return {key: value.numpy() for key, value in detections.items()}

    def network_alone():
        with torch.inference_mode():
            return network(model, batch)

    result["end_to_end_s"], result["end_to_end_runs"] = median_seconds(end_to_end, args.runs)
    result["network_s"], result["network_runs"] = median_seconds(network_alone, args.runs)
    result["detections"] = int(len(end_to_end()["scores"]))
    if not args.no_flops:
        counter = FlopCounterMode(display=False)
        with counter:
            network_alone()
        # Counts convolutions and matrix multiplies only (a multiply-add counts 2), not bias, ReLU or additions.
        result["flops"] = int(counter.get_total_flops())
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
