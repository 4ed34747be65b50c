"""Anchor coverage (by hand), the anchor optimiser (exact against the real anchors, seeded), --auto-anchors, P2."""

import math
import types

import numpy as np
import pytest

from keras_retinanet.anchors import AnchorParameters, anchors_for_shape, compute_overlap, guess_shapes
from keras_retinanet.anchors.optimize import best_ious, coverage_score, fit_anchors, place_boxes
from keras_retinanet.bin import debug as debug_command
from keras_retinanet.bin import train as train_command
from keras_retinanet.config.anchors_ini import AnchorConfig, read_anchor_config
from keras_retinanet.data.diagnostics import DatasetBoxes, coverage_of, describe_fit, fit_dataset_anchors, format_coverage
from keras_retinanet.readers.demo import make_demo_dataset
from keras_retinanet.errors import DatasetError
from keras_retinanet.models.applications import strided_feature_shapes

# One level (P4, stride 16) of 16 px squares: on a 64 x 64 image, centres at 8, 24, 40, 56 on each axis.
SQUARES = AnchorParameters(sizes=[16], strides=[16], ratios=[1.0], scales=[1.0])
CRAFTED = np.array(
    [
        [0, 0, 16, 16],  # on the anchor centred (8, 8): IoU 1
        [4, 4, 20, 20],  # 4 px off on both axes: 12 * 12 / (256 + 256 - 144) = 144 / 368
        [32, 0, 64, 16],  # 32 x 16 holds the anchor [32, 0, 48, 16]: 256 / 512 = 0.5 exactly, a positive
        [0, 40, 8, 48],  # 8 x 8 inside the anchor [0, 32, 16, 48]: 64 / 256
    ],
    dtype=np.float64,
)
CRAFTED_LABELS = np.array([0, 1, 0, 1])
CRAFTED_IOUS = [1.0, 144 / 368, 0.5, 0.25]


def _square_anchors(shape):
    return anchors_for_shape(shape, [4], SQUARES)


def test_coverage_of_crafted_boxes_by_hand():
    data = DatasetBoxes((CRAFTED,), (CRAFTED_LABELS,), ((64, 64),), label_to_name=lambda label: "ab"[label])
    summary = coverage_of(data, _square_anchors)
    assert (summary.overall.total, summary.overall.covered) == (4, 2)
    assert summary.overall.mean_best_iou == pytest.approx(sum(CRAFTED_IOUS) / 4)
    by_class = {group.name: group for group in summary.by_class}
    assert (by_class["a"].covered, by_class["a"].total) == (2, 2)
    assert by_class["a"].mean_best_iou == pytest.approx((1.0 + 0.5) / 2)
    assert (by_class["b"].covered, by_class["b"].total) == (0, 2)
    assert by_class["b"].mean_best_iou == pytest.approx((144 / 368 + 0.25) / 2)
    # sqrt(area): 16, 16, sqrt(512) = 22.6, 8 px
    by_size = {group.name: group for group in summary.by_size}
    assert (by_size["<16"].covered, by_size["<16"].total) == (0, 1)
    assert (by_size["16-32"].covered, by_size["16-32"].total) == (2, 3)
    assert by_size[">=256"].total == 0
    table = format_coverage(summary)
    assert "2 of 4 annotations (50.0%)" in table
    assert "size <16 px" in table and "size >=256 px" not in table  # empty buckets are left out


def test_fast_objective_on_crafted_boxes_by_hand():
    shapes = np.broadcast_to(np.array(guess_shapes((64, 64), [4])), (4, 1, 2))
    ious = best_ious(place_boxes(CRAFTED, shapes, SQUARES.strides), SQUARES)
    np.testing.assert_allclose(ious, CRAFTED_IOUS, rtol=0, atol=1e-15)
    assert coverage_score(ious) == (0.5, pytest.approx(sum(CRAFTED_IOUS) / 4))


@pytest.mark.parametrize("image_shape", [(320, 320), (203, 341), (97, 150)])
@pytest.mark.parametrize("feature_shapes", ["guess", "floor"])
def test_fast_objective_equals_the_full_anchors(image_shape, feature_shapes):
    """Best IoU over every anchor of anchors_for_shape, boxes near the borders and beyond the maps included."""
    rng = np.random.default_rng(7)
    levels = [3, 4, 5, 6, 7]
    if feature_shapes == "guess":
        shapes_callback = guess_shapes
    else:  # a keras.applications trunk that rounds odd sizes down: the last map rows may be missing
        def shapes_callback(shape, pyramid_levels):
            return strided_feature_shapes(shape, pyramid_levels, ("floor",) * 5)
    side = rng.uniform(3, 120, size=300)
    aspect = np.exp(rng.uniform(-1.2, 1.2, size=300))
    width, height = side * np.sqrt(aspect), side / np.sqrt(aspect)
    x1 = rng.uniform(-10, image_shape[1] - 2, size=300)
    y1 = rng.uniform(-10, image_shape[0] - 2, size=300)
    boxes = np.round(np.stack([x1, y1, x1 + width, y1 + height], axis=1), 1)
    random = AnchorParameters([11, 23, 45, 91, 181], [8, 16, 32, 64, 128], [0.412, 1.07, 2.9], [1.0, 1.31, 2.47])
    for parameters in (AnchorParameters.default, random):
        anchors = anchors_for_shape(image_shape, levels, parameters, shapes_callback=shapes_callback)
        exact = compute_overlap(boxes, anchors).max(axis=1)
        level_shapes = np.array([np.asarray(s) for s in shapes_callback(image_shape, levels)])
        placed = place_boxes(boxes, np.broadcast_to(level_shapes, (300,) + level_shapes.shape), parameters.strides)
        fast = best_ious(placed, parameters)
        np.testing.assert_allclose(fast, exact, rtol=0, atol=1e-12)
        assert np.array_equal(fast >= 0.5, exact >= 0.5)


def test_fit_anchors_keeps_the_start_when_nothing_is_better():
    # 32 px squares centred on P3 anchor centres ((j + 0.5) * 8 = 20 and 44): default anchors, IoU 1
    boxes = np.array([[4, 4, 36, 36], [28, 28, 60, 60]], dtype=np.float64)
    shapes = np.broadcast_to(np.array([np.asarray(s) for s in guess_shapes((64, 64), [3, 4, 5, 6, 7])]), (2, 5, 2))
    fit = fit_anchors(place_boxes(boxes, shapes, [8, 16, 32, 64, 128]), AnchorParameters.default, seed=0, maxiter=3)
    assert fit.before == (1.0, 1.0)
    assert not fit.improved and fit.parameters == AnchorParameters.default


# Hand-checkable boxes for what the fit returns, on SQUARES' one level (16 px squares centred at 8, 24, 40, 56):
# nine 16 x 32 boxes around the anchor [16, 16, 32, 32] (IoU 256 / 512 = 0.5: covered, barely) and one 16 x 12 box
# inside it (IoU 192 / 256 = 0.75). TALL anchors (base 16, ratio 2, scale 1.414: 15.998 x 31.996) fit the nine at
# IoU 0.9997 but give the 16 x 12 box 192 / 512 = 0.375: they score higher (0.9 covered + 0.5 x 0.937 mean IoU =
# 1.369 against 1.0 + 0.5 x 0.525 = 1.263) and cover one box fewer.
TALL_BOXES = np.array([[16, 8, 32, 40]] * 9 + [[16, 18, 32, 30]], dtype=np.float64)
TALL_VECTOR = np.array([4.0, np.log(2.0), np.log2(1.414)])  # [log2 base, log ratio, log2 scale]


def _squares_placed(boxes, image_shape=(64, 64)):
    shapes = np.broadcast_to(np.array(guess_shapes(image_shape, [4])), (len(boxes), 1, 2))
    return place_boxes(boxes, shapes, SQUARES.strides)


@pytest.fixture
def search_finds_tall_anchors(monkeypatch):
    """Differential evolution replaced by one that looks at the start and the TALL anchors and settles on TALL,
    as a search led by the score (coverage + 0.5 x mean IoU) does on these boxes."""
    import scipy.optimize

    looked_at = []

    def search(objective, bounds, x0=None, **options):
        looked_at.append(objective(np.stack([x0, TALL_VECTOR], axis=1)))
        return types.SimpleNamespace(x=TALL_VECTOR.copy())

    monkeypatch.setattr(scipy.optimize, "differential_evolution", search)
    return looked_at


def test_the_fit_never_covers_fewer_boxes_than_the_start(search_finds_tall_anchors):
    placed = _squares_placed(TALL_BOXES)
    np.testing.assert_allclose(best_ious(placed, SQUARES), [0.5] * 9 + [0.75])
    fit = fit_anchors(placed, SQUARES, seed=0)
    (scores,) = search_finds_tall_anchors
    assert scores[1] < scores[0]  # the search prefers TALL (scores are minimised) ...
    assert fit.search == (0.9, pytest.approx((9 * 512 * 1.414**2 / 2 / 512 + 0.375) / 10, abs=1e-4))
    # ... but it covers 9 boxes where the start covers 10: the start is returned, and the result says why
    assert fit.parameters == SQUARES and not fit.improved and fit.chosen == "start"
    assert fit.before == fit.after == (1.0, pytest.approx(0.525))


def test_a_dataset_fit_says_when_it_keeps_the_start(search_finds_tall_anchors):
    # one box an image: training's assignment gives each box its own anchors, as the search assumes
    data = DatasetBoxes(tuple(box[None] for box in TALL_BOXES), (np.zeros(1, np.int64),) * 10, ((64, 64),) * 10)
    start = AnchorConfig(SQUARES, (4,))
    result = fit_dataset_anchors(data, start, guess_shapes, seed=0)
    assert result.anchors == start and not result.improved
    assert (result.before.overall.covered, result.after.overall.covered) == (10, 10)
    line = describe_fit(result)[0]
    assert line.startswith("Anchor fit (searched all 10 boxes): coverage 100.0% -> 100.0%")
    assert line.endswith("(the search's best anchors cover fewer boxes, 90.0% against 100.0%; kept the starting ones)")


def test_the_fit_looks_at_every_box_and_reports_on_every_box(search_finds_tall_anchors):
    """2,000 boxes on an anchor (IoU 1) and 1,000 8 px boxes inside one (IoU 64 / 256 = 0.25)."""
    boxes = np.array([[16, 16, 32, 32]] * 2000 + [[16, 16, 24, 24]] * 1000, dtype=np.float64)
    fit = fit_anchors(_squares_placed(boxes), SQUARES, seed=0)
    assert (fit.boxes, fit.total, fit.sampled) == (3000, 3000, False)  # keras-retinanet's 1,000-box sample is gone
    # above max_boxes the search samples, and says so; the coverage still counts every box
    sampled = fit_anchors(_squares_placed(boxes), SQUARES, seed=0, max_boxes=500)
    assert (sampled.boxes, sampled.total, sampled.sampled) == (500, 3000, True)
    assert sampled.before == (pytest.approx(2 / 3), pytest.approx((2000 + 0.25 * 1000) / 3000))
    data = DatasetBoxes((boxes[:1500], boxes[1500:]), (np.zeros(1500, np.int64),) * 2, ((64, 64),) * 2)
    line = describe_fit(fit_dataset_anchors(data, AnchorConfig(SQUARES, (4,)), guess_shapes, seed=0, max_boxes=500))[0]
    assert line.startswith("Anchor fit (searched a random sample of 500 of the 3,000 boxes; the coverage counts them all)")


@pytest.fixture(scope="module")
def small_objects(tmp_path_factory):
    """128 px images, 5-10 shapes of 18-32 px each: keras-retinanet's anchors (32 px and up) miss a third."""
    folder = tmp_path_factory.mktemp("small_objects")
    written = make_demo_dataset(
        folder, num_train=12, num_val=2, image_size=128, min_object_size=18, max_object_size=32,
        min_objects=5, max_objects=10, image_format=".png", seed=0,
    )  # fmt: skip
    return written.train_csv, written.classes_csv


SMALL = ["--backbone", "mobilenet128_0.25", "--image-min-side", "128", "--image-max-side", "128"]


def test_optimize_anchors_covers_small_objects_reproducibly(small_objects, tmp_path, capsys):
    annotations, classes = small_objects
    results = []
    for name in ("first.ini", "second.ini"):
        results.append(debug_command.main(
            [*SMALL, "--optimize-anchors", "--seed", "5", "--config-out", str(tmp_path / name), "csv", annotations, classes]
        ))  # fmt: skip
    before, after = results[0].before, results[0].after
    assert before.share < 0.75
    assert after.share >= 0.95
    first, second = (tmp_path / "first.ini").read_text(), (tmp_path / "second.ini").read_text()
    assert first == second  # same seed, same anchors, same file
    loaded = read_anchor_config(tmp_path / "first.ini")
    assert loaded.parameters == results[0].anchors.parameters
    assert loaded.pyramid_levels == (3, 4, 5, 6, 7)
    assert loaded.parameters.sizes[0] >= 8  # never below the P3 stride
    out = capsys.readouterr().out
    assert "Anchor coverage before" in out and "Anchor coverage after" in out

    # The written file is a --config: retinanet-debug --anchors with it reports the fitted coverage.
    capsys.readouterr()
    debug_command.main([*SMALL, "--anchors", "--no-gui", "--output-dir", str(tmp_path / "drawn"),
                        "--config", str(tmp_path / "first.ini"), "csv", annotations, classes])  # fmt: skip
    out = capsys.readouterr().out
    assert f"{after.overall.covered} of {after.overall.total} annotations ({100 * after.share:.1f}%)" in out


def test_config_out_needs_optimize_anchors(small_objects, capsys):
    with pytest.raises(SystemExit):
        debug_command.main([*SMALL, "--config-out", "x.ini", "--no-gui", "--output-dir", "x", "csv", *small_objects])
    assert "--config-out needs --optimize-anchors" in capsys.readouterr().err


@pytest.mark.slow
def test_auto_anchors_trains_with_the_fitted_anchors_and_records_them(small_objects, tmp_path, capsys, monkeypatch):
    from keras_retinanet.checkpoint import read_spec
    from keras_retinanet.data import diagnostics
    from keras_retinanet.engine import auto_anchors

    reads = []
    real_collect_boxes = diagnostics.collect_boxes

    def counted_collect_boxes(*args, **kwargs):
        reads.append(args)
        return real_collect_boxes(*args, **kwargs)

    for module in (diagnostics, auto_anchors):  # wherever the training images are read and resized for their boxes
        monkeypatch.setattr(module, "collect_boxes", counted_collect_boxes)
    annotations, classes = small_objects
    train_command.main(
        [*SMALL, "--no-weights", "--trainable-bn", "--batch-size", "2", "--steps", "1", "--epochs", "1",
         "--no-evaluation", "--workers", "0", "--seed", "3", "--snapshot-path", str(tmp_path),
         "--pyramid-feature-size", "16", "--classification-feature-size", "8", "--regression-feature-size", "8",
         "--auto-anchors", "csv", annotations, classes]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "--auto-anchors: the anchors cover" in out and "fitting anchors" in out
    fitted = read_anchor_config(tmp_path / "anchors.ini")
    assert fitted.parameters != AnchorParameters.default
    spec = read_spec(str(tmp_path / "mobilenet128_0.25_csv_01.h5"))
    assert spec.anchor_parameters == fitted.parameters
    assert tuple(spec.pyramid_levels) == fitted.pyramid_levels
    # the start-up table describes the fitted anchors: every annotation covered
    assert "Anchor coverage (up to 500 training images)" in out
    assert len(reads) == 1, "the fit and the start-up table share one reading of the training boxes"


def test_pyramid_levels_outside_the_pyramid_are_an_error_in_the_file(tmp_path):
    path = tmp_path / "anchors.ini"
    path.write_text("[pyramid_levels]\nlevels = 1 2 3\n")
    with pytest.raises(DatasetError, match=r"levels: 1 is not a level the feature pyramid has \(2-7"):
        read_anchor_config(path)


P2_INI = """[anchor_parameters]
sizes   = 16 32 64 128 256 512
strides = 4 8 16 32 64 128
ratios  = 0.5 1 2
scales  = 1 1.26 1.587

[pyramid_levels]
levels = 2 3 4 5 6 7
"""


def test_p2_on_a_backbone_without_stride_4_features_is_a_one_line_error(small_objects, tmp_path, capsys):
    config = tmp_path / "p2.ini"
    config.write_text(P2_INI)
    with pytest.raises(SystemExit) as exit_info:
        train_command.main([*SMALL, "--no-weights", "--steps", "1", "--epochs", "1", "--no-evaluation", "--workers",
                            "0", "--no-snapshots", "--config", str(config), "csv", *small_objects])  # fmt: skip
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: pyramid level P2 is not supported on this backbone")
    assert "only the ResNet backbones" in error


def test_p2_on_resnet_has_one_output_per_anchor(tmp_path):
    from keras_retinanet import models

    path = tmp_path / "p2.ini"
    path.write_text(P2_INI)
    anchors = read_anchor_config(path)
    model = models.backbone("resnet50").retinanet(
        1, num_anchors=anchors.parameters.num_anchors(), pyramid_levels=list(anchors.pyramid_levels),
        pyramid_feature_size=8, classification_feature_size=8, regression_feature_size=8,
    )  # fmt: skip
    regression, _ = model.predict(np.zeros((1, 64, 96, 3), np.float32), verbose=0)
    # P2 of a 64 x 96 input is 16 x 24 positions, then 8x12, 4x6, 2x3, 1x2, 1x1: 558 positions, 9 anchors each
    positions = 16 * 24 + 8 * 12 + 4 * 6 + 2 * 3 + 1 * 2 + 1 * 1
    assert math.prod(regression.shape[:2]) == positions * 9
    assert len(anchors_for_shape((64, 96), list(anchors.pyramid_levels), anchors.parameters)) == positions * 9
