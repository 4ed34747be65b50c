"""Tiled training (issue 26, item 3): random crops at native resolution, their boxes, their seeds, and the model's spec.

The numbers of the crop rules are worked out by hand in the comments; datasets are small generated images (400x600
with 20 px objects, tiles of 128) and the one training run is a narrow MobileNet.
"""

import json
import os

import cv2
import keras
import numpy as np
import pytest

from keras_retinanet.bin import detection_options
from keras_retinanet.bin import debug as debug_command
from keras_retinanet.bin import train as train_command
from keras_retinanet.config import DetectorSpec, RetinaNetConfig
from keras_retinanet.config.spec import reconcile
from keras_retinanet.config.tile_settings import TileCropError
from keras_retinanet.data.cropping import (
    TileCrop,
    crop_annotations,
    crop_image,
    crop_window,
    crops_per_image,
    start_range,
    with_native_scale,
)
from keras_retinanet.data.diagnostics import collect_boxes
from keras_retinanet.data.pipeline import make_dataset
from helpers.datasets import write_csv_dataset
from helpers.square_images import SquareImages

IMAGE_SHAPE = (400, 600)
OBJECT = 20
TILE = 128
BACKBONE = "mobilenet128_0.25"
NARROW = ["--pyramid-feature-size", "16", "--classification-feature-size", "8", "--regression-feature-size", "8"]


# --------------------------------------------------------------------------------------
# Crop placement, clipping and the visibility rule, by hand
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "length, around, expected",
    [
        (600, None, (0, 472)),  # anywhere: 600 - 128
        (100, None, (0, 0)),  # a side shorter than the tile is taken whole
        (100, (10, 30), (0, 0)),
        (600, (200, 220), (92, 200)),  # holds the box: start >= 220 - 128 and <= 200
        (600, (10, 30), (0, 10)),  # ... and not before the image
        (600, (580, 600), (472, 472)),  # ... nor past its end
        (600, (100, 300), (72, 200)),  # longer than the tile: holds its centre 200, start in [200 - 128, 200]
        (600, (10.5, 138.3), (0, 74)),  # 127.8 px fits no 128 px window of whole pixels: its centre 74.4
    ],
)
def test_start_range_by_hand(length, around, expected):
    assert start_range(length, TILE, around) == expected


def test_crop_annotations_clip_to_the_crop_and_drop_boxes_below_the_visibility():
    window = (100, 50, 228, 178)  # 128 x 128 from (100, 50)
    annotations = {
        "bboxes": np.array([
            [110, 60, 130, 80],  # inside: moved by (-100, -50)
            [90, 60, 110, 80],  # left half outside: 10 / 20 of its width, 0.5 of its area
            [220, 170, 240, 190],  # corner: 8 / 20 each way, 0.16 of its area
            [300, 300, 320, 320],  # outside
            [95, 60, 115, 80],  # a quarter outside: 0.75 of its area
        ], dtype=np.float64),
        "labels": np.array([0, 1, 2, 3, 4]),
    }  # fmt: skip
    half = crop_annotations(annotations, window, min_visibility=0.5)
    np.testing.assert_array_equal(half["labels"], [0, 1, 4])  # 0.5 is kept: "less than" the share is dropped
    np.testing.assert_array_equal(half["bboxes"], [[10, 10, 30, 30], [0, 10, 10, 30], [0, 10, 15, 30]])
    np.testing.assert_array_equal(crop_annotations(annotations, window, 0.6)["labels"], [0, 4])
    np.testing.assert_array_equal(crop_annotations(annotations, window, 0.0)["labels"], [0, 1, 2, 4])
    corner = crop_annotations(annotations, window, 0.0)["bboxes"][2]
    np.testing.assert_array_equal(corner, [120, 120, 128, 128])
    assert annotations["bboxes"][0].tolist() == [110, 60, 130, 80]  # the input is not changed


def test_crop_image_is_the_window_in_an_array_of_its_own():
    image = np.arange(400 * 600 * 3, dtype=np.uint32).reshape(400, 600, 3).astype(np.uint8)
    crop = crop_image(image, (100, 50, 228, 178))
    np.testing.assert_array_equal(crop, image[50:178, 100:228])
    assert crop.base is None and not np.shares_memory(crop, image)  # the whole image can be freed


def test_a_crop_around_an_object_holds_it_whole():
    box = np.array([[300.0, 190.0, 320.0, 210.0]])  # a 20 px object in a 400x600 image
    rng = np.random.RandomState(0)
    for _ in range(200):
        x1, y1, x2, y2 = crop_window(IMAGE_SHAPE, (TILE, TILE), box, rng, object_chance=1.0)
        assert (x2 - x1, y2 - y1) == (TILE, TILE)
        assert 0 <= x1 and x2 <= 600 and 0 <= y1 and y2 <= 400
        assert x1 <= 300 and 320 <= x2 and y1 <= 190 and 210 <= y2


def test_crops_fall_anywhere_without_the_object_chance_and_images_smaller_than_the_tile_are_whole():
    rng = np.random.RandomState(0)
    starts = np.array([crop_window(IMAGE_SHAPE, (TILE, TILE), np.zeros((0, 4)), rng, 1.0)[:2] for _ in range(3000)])
    assert starts[:, 0].min() == 0 and starts[:, 0].max() == 600 - TILE  # every start can come up
    assert starts[:, 1].min() == 0 and starts[:, 1].max() == 400 - TILE  # (no boxes: uniform despite the chance)
    small = crop_window((100, 90), (TILE, TILE), np.array([[10.0, 10.0, 30.0, 30.0]]), rng, 1.0)
    assert small.tolist() == [0, 0, 90, 100]
    assert crop_window((100, 600), (TILE, TILE), np.zeros((0, 4)), rng)[3] == 100  # a short side only


def test_crops_per_image_cover_it():
    assert crops_per_image((400, 600), (TILE, TILE)) == 4 * 5
    assert crops_per_image((100, 90), (TILE, TILE)) == 1


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"data.tile": 0}, "positive size"),
        ({"data.tile": (128,)}, "an int or (height, width)"),
        ({"data.tile": 128, "data.tile_min_visibility": 1.5}, "tile_min_visibility"),
        ({"data.tile_object_chance": -0.1}, "tile_object_chance"),
    ],
)
def test_bad_tile_settings_are_errors_that_name_them(settings, message):
    with pytest.raises(TileCropError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RetinaNetConfig.build(settings)


def test_the_tile_is_a_height_width_pair_in_the_configuration_and_its_json():
    config = RetinaNetConfig.build({"data.tile": 128})
    assert config.data.tile == (128, 128)
    assert json.loads(config.to_json())["data"]["tile"] == [128, 128]
    assert RetinaNetConfig.from_json(config.to_json()) == config
    assert RetinaNetConfig.build({"data.tile": (96, 160)}).data.tile == (96, 160)


def test_tiles_keep_their_own_scale_unless_the_sizing_is_given():
    assert with_native_scale(RetinaNetConfig.build({"data.tile": 128})).data.no_resize
    assert with_native_scale(RetinaNetConfig.build({"data.tile": 128}, preset="demo")).data.no_resize
    sides = RetinaNetConfig.build({"data.tile": 128, "data.image_min_side": 128, "data.image_max_side": 128})
    assert with_native_scale(sides) is sides
    assert not with_native_scale(RetinaNetConfig.build({})).data.no_resize


# --------------------------------------------------------------------------------------
# The generator: crops from the run's seed and the batch's place
# --------------------------------------------------------------------------------------


def large_images(**kwargs):
    """Six 400x600 images, one 32 px square each, cropped to 128 px tiles."""
    kwargs.setdefault("tile_crop", TileCrop.of(TILE))
    return SquareImages([IMAGE_SHAPE] * 6, batch_size=2, group_method="none", **kwargs)


def test_batches_are_crops_of_the_tile_at_native_scale():
    generator = large_images(seed=3)
    inputs, (regression, labels) = generator.compute_input_output([0, 1], position=4)
    assert inputs.shape == (2, TILE, TILE, 3)
    _, images, annotations = generator.load_cropped_group([0, 1], position=4)
    for image, boxes in zip(images, annotations):
        assert image.shape == (TILE, TILE, 3) and image.base is None  # the crop only, not a view of the image
        x1, y1, x2, y2 = boxes["bboxes"].T
        cut = (x1 == 0) | (y1 == 0) | (x2 == TILE) | (y2 == TILE)
        assert np.all(((x2 - x1 == 32) & (y2 - y1 == 32)) | cut)  # a whole square keeps its 32 px: no resize


def test_crops_are_a_function_of_the_seed_and_the_place_in_the_stream():
    first = large_images(seed=3).compute_input_output([0, 1], position=4)[0]
    again = large_images(seed=3).compute_input_output([0, 1], position=4)[0]
    elsewhere = large_images(seed=3).compute_input_output([0, 1], position=5)[0]
    other_seed = large_images(seed=4).compute_input_output([0, 1], position=4)[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, elsewhere) and not np.array_equal(first, other_seed)


def test_a_resumed_stream_gives_the_crops_the_straight_stream_gave():
    generator = large_images(seed=11, shuffle_groups=True)
    straight = [batch[0].numpy() for batch in make_dataset(generator, repeat=True).take(9)]
    resumed = [
        batch[0].numpy() for batch in make_dataset(generator, repeat=True, start=5, num_parallel_calls=3).take(4)
    ]
    for want, got in zip(straight[5:], resumed):
        np.testing.assert_array_equal(got, want)
    assert len({batch.tobytes() for batch in straight}) == len(straight)  # the crops differ from batch to batch


def test_crops_around_objects_give_sparse_large_images_positives():
    always = large_images(seed=1, tile_crop=TileCrop.of(TILE, object_chance=1.0))
    never = large_images(seed=1, tile_crop=TileCrop.of(TILE, object_chance=0.0))

    def positives(generator):
        return [int((generator.compute_input_output([0, 1], position=p)[1][1][:, :, -1] == 1).any(axis=1).sum())
                for p in range(20)]  # fmt: skip

    assert positives(always) == [2] * 20  # each crop holds its image's square whole
    assert sum(positives(never)) < 20  # a 32 px square in 400x600: most uniform crops miss it


# --------------------------------------------------------------------------------------
# Anchor coverage and --auto-anchors see the boxes as the crops do
# --------------------------------------------------------------------------------------


def test_the_anchor_check_sees_boxes_at_the_size_the_crops_give_them():
    resized = SquareImages([IMAGE_SHAPE] * 2, no_resize=False, image_min_side=800, image_max_side=1333)
    whole = collect_boxes(resized)
    assert whole.shapes == ((800, 1200), (800, 1200))
    np.testing.assert_allclose(whole.boxes[0][:, 2] - whole.boxes[0][:, 0], [64.0])  # 32 px doubled by the resize

    tiled = SquareImages([IMAGE_SHAPE] * 2, tile_crop=TileCrop.of(TILE), seed=5)  # native scale
    data = collect_boxes(tiled)
    assert data.images == 2 and len(data.shapes) == 2 * crops_per_image(IMAGE_SHAPE, (TILE, TILE))
    assert set(data.shapes) == {(TILE, TILE)}
    boxes = np.concatenate(data.boxes)
    assert len(boxes) >= 2  # half the crops are placed around the square
    assert boxes.min() >= 0 and boxes.max() <= TILE
    sides = np.concatenate([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]])
    assert sides.max() == 32 and sides.min() >= 16  # native size; cut ones keep at least half their area

    # a crop resized by given sides: 128 -> 256 doubles the boxes
    sized = SquareImages([IMAGE_SHAPE] * 2, tile_crop=TileCrop.of(TILE), seed=5, no_resize=False,
                         image_min_side=256, image_max_side=256)  # fmt: skip
    scaled = collect_boxes(sized)
    assert set(scaled.shapes) == {(256, 256)}
    np.testing.assert_allclose(np.concatenate(scaled.boxes), 2 * boxes)


def test_the_anchor_fit_takes_crops_boxes_whose_ratios_put_the_start_on_a_bound():
    """Crops of 20 px squares, two cut to 11 and 13 px wide: the ratio bounds (0.856 to 1.67) clip the start's ratio
    0.5 onto the lower bound, which differential_evolution's scaling to [0, 1] rounded to -1e-16 and refused."""
    from keras_retinanet import models
    from keras_retinanet.data.diagnostics import DatasetBoxes, fit_dataset_anchors

    sides = [(11, 20), (13, 20), (20, 15), (20, 19), (20, 19)] + [(20, 20)] * 49
    boxes = tuple(np.array([[4.0, 4.0, 4.0 + w, 4.0 + h]]) for w, h in sides)
    data = DatasetBoxes(boxes, (np.zeros(1, np.int64),) * len(sides), ((TILE, TILE),) * len(sides))
    result = fit_dataset_anchors(data, None, models.backbone(BACKBONE).feature_shapes, seed=0, maxiter=3)
    assert result.before.share == 0.0 and result.after.share > 0.9  # 20 px: below the default 32 px anchors


def test_the_start_up_table_says_it_looked_at_crops(caplog):
    from keras_retinanet.engine.auto_anchors import report_coverage

    generator = SquareImages([IMAGE_SHAPE], tile_crop=TileCrop.of(TILE), seed=5)
    with caplog.at_level("INFO", logger="keras_retinanet"):
        report_coverage(generator, max_images=10)
    assert "in 20 random 128x128 crops" in caplog.text and "in 1 images" in caplog.text


# --------------------------------------------------------------------------------------
# The spec
# --------------------------------------------------------------------------------------


def test_the_spec_records_the_tile_and_a_resumed_run_takes_it():
    config = with_native_scale(RetinaNetConfig.build({"data.tile": 128}))
    spec = DetectorSpec.from_config(config, ["square"], "tf")
    assert spec.tile == (128, 128) and not spec.resize
    assert spec.to_dict()["tile"] == [128, 128]
    assert DetectorSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert DetectorSpec.from_dict({k: v for k, v in spec.to_dict().items() if k != "tile"}).tile is None  # older files

    resumed, notes = reconcile(RetinaNetConfig.build({}), spec, "model.h5")
    assert resumed.data.tile == (128, 128) and resumed.data.no_resize and notes == []
    other, notes = reconcile(RetinaNetConfig.build({"data.tile": 96}), spec, "model.h5")
    assert other.data.tile == (96, 96)
    assert notes == ["using --tile 96x96 (model.h5 was trained on 128x128 crops)"]


def test_the_per_epoch_evaluation_slices_validation_images_into_training_tiles():
    from keras_retinanet import models
    from keras_retinanet.engine.trainer import evaluation_model
    from keras_retinanet.inference.detector import Detector

    config = with_native_scale(RetinaNetConfig.build({"data.tile": (96, 128)}))
    spec = DetectorSpec.from_config(config, ["square"], "tf").with_filter(
        nms=True, class_specific_filter=True, nms_threshold=0.5, score_threshold=0.05, max_detections=300
    )
    inputs = keras.Input((None, None, 3))
    model = models.RetinaNetModel(inputs=inputs, outputs=[keras.layers.Identity()(inputs)], spec=spec)
    sliced = evaluation_model(model, config)
    assert isinstance(sliced, Detector) and sliced.model is model  # the training weights, as they change
    assert (sliced.tiles.height, sliced.tiles.width) == (96, 128)
    assert not sliced.input_transform.resize_enabled
    assert evaluation_model(model, RetinaNetConfig.build({})) is model  # whole images without tiles


# --------------------------------------------------------------------------------------
# The commands
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tile", "0"], "argument --tile: must be a size in pixels"),
        (["--tile", "128x"], "argument --tile: must be a size in pixels"),
        (["--tile", "big"], "argument --tile: must be a size in pixels"),
        (["--tile", "128", "--tile-min-visibility", "1.5"], "argument --tile-min-visibility: must lie between 0 and 1"),
    ],
)
def test_a_bad_tile_is_a_one_line_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_command.parse_args([*argv, "csv", "a.csv", "c.csv"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in error and error.startswith("retinanet-train: error:")


def test_tile_settings_without_a_tile_say_they_do_nothing():
    args = train_command.parse_args(["--tile-min-visibility", "0.3", "csv", "a.csv", "c.csv"])
    assert list(train_command.notes(args)) == ["--tile-min-visibility does nothing without --tile"]
    args = train_command.parse_args(["--tile", "96x128", "--tile-object-chance", "1", "csv", "a.csv", "c.csv"])
    assert args.config.data.tile == (96, 128) and args.config.data.tile_object_chance == 1.0
    assert list(train_command.notes(args)) == []
    assert detection_options.tile_size("96x128") == (96, 128)


def write_large_dataset(folder, count=4):
    """``count`` 400x600 PNGs, each with three 20 px squares; returns (annotations, classes) paths."""
    rng = np.random.default_rng(0)
    rows = []
    for index in range(count):
        image = np.full(IMAGE_SHAPE + (3,), 30, dtype=np.uint8)
        for _ in range(3):
            x, y = int(rng.integers(0, 600 - OBJECT)), int(rng.integers(0, 400 - OBJECT))
            image[y : y + OBJECT, x : x + OBJECT] = 230
            rows.append([f"img{index}.png", x, y, x + OBJECT, y + OBJECT, "square"])
        cv2.imwrite(os.path.join(folder, f"img{index}.png"), image)
    return write_csv_dataset(folder, rows, ("square",))


@pytest.fixture(scope="module")
def large_dataset(tmp_path_factory):
    return write_large_dataset(str(tmp_path_factory.mktemp("large")))


def test_debug_shows_the_crops_training_takes(large_dataset, tmp_path):
    output = tmp_path / "debug"
    total, _ = debug_command.main([
        "--backbone", BACKBONE, "--tile", str(TILE), "--annotations", "--no-gui", "--output-dir", str(output),
        "csv", *large_dataset,
    ])  # fmt: skip
    written = sorted(os.listdir(output))
    assert len(written) == 4
    assert {cv2.imread(str(output / name)).shape for name in written} == {(TILE, TILE, 3)}
    assert total >= 2  # half the crops are around a square (seed 0)


TRAIN_ARGS = [
    "--backbone", BACKBONE, "--batch-size", "2", "--steps", "2", "--lr", "1e-3", "--seed", "7", "--deterministic",
    "--workers", "2", *NARROW, "--tile", str(TILE),
]  # fmt: skip


@pytest.fixture(scope="module")
def tiled_run(tmp_path_factory, large_dataset):
    """Two epochs of tiled training, evaluated (sliced) on the training images after each."""
    folder = str(tmp_path_factory.mktemp("tiled"))
    keras.utils.clear_session()
    train_command.main([
        *TRAIN_ARGS, "--epochs", "2", "--run-dir", folder, "csv", *large_dataset, "--val-annotations", large_dataset[0],
    ])  # fmt: skip
    return folder


@pytest.mark.slow
def test_a_tiled_run_records_its_tile_and_its_model_predicts_at_native_scale(tiled_run, large_dataset):
    from keras_retinanet import load_detector

    with open(os.path.join(tiled_run, "config.json")) as handle:
        record = json.load(handle)
    assert record["data"]["tile"] == [TILE, TILE] and record["data"]["no_resize"] is True
    with open(os.path.join(tiled_run, "metrics.csv")) as handle:
        assert "mAP" in handle.readline()  # the sliced evaluation ran

    detector = load_detector(os.path.join(tiled_run, f"{BACKBONE}_csv_02.h5"))
    assert detector.spec.tile == (TILE, TILE) and not detector.spec.resize
    # Not tiled by default: the whole 400x600 image goes in at the scale the crops were trained at.
    image = cv2.imread(os.path.join(os.path.dirname(large_dataset[0]), "img0.png"))
    assert detector.input_transform(image, preprocess_first=True)[0].shape == (400, 600, 3)
    assert detector.tiles is None
    whole = detector.predict(image, score_threshold=0.0)
    tiled = detector.predict(image, score_threshold=0.0, tile=detector.spec.tile)
    for result in (whole, tiled):
        assert result["boxes"].shape[1] == 4 and len(result["boxes"]) > 0
        assert result["boxes"][:, 2].max() <= 600.5 and result["boxes"][:, 3].max() <= 400.5


@pytest.mark.slow
def test_a_resumed_tiled_run_trains_on_the_crops_of_the_straight_run(tiled_run, large_dataset, tmp_path):
    """Resuming from epoch 1 without naming the tile or the seed ends with the straight run's weights: the crops come
    from the seed and the place in the stream (both in the snapshot) and the tile from the snapshot's spec."""
    resumed = str(tmp_path / "resumed")
    without = [arg for index, arg in enumerate(TRAIN_ARGS) if arg in ("--tile", "--seed") or
               (index and TRAIN_ARGS[index - 1] in ("--tile", "--seed"))]  # fmt: skip
    kept = [arg for arg in TRAIN_ARGS if arg not in without]
    keras.utils.clear_session()
    train_command.main([
        *kept, "--epochs", "2", "--snapshot", os.path.join(tiled_run, f"{BACKBONE}_csv_01.h5"), "--run-dir", resumed,
        "csv", *large_dataset, "--val-annotations", large_dataset[0],
    ])  # fmt: skip
    expected = keras.models.load_model(os.path.join(tiled_run, f"{BACKBONE}_csv_02.h5"), compile=False)
    actual = keras.models.load_model(os.path.join(resumed, f"{BACKBONE}_csv_02.h5"), compile=False)
    before = keras.models.load_model(os.path.join(tiled_run, f"{BACKBONE}_csv_01.h5"), compile=False)
    moved = 0.0
    for want, got, old in zip(expected.weights, actual.weights, before.weights):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-7, err_msg=want.path)
        moved = max(moved, float(np.max(np.abs(np.asarray(want) - np.asarray(old)))))
    assert moved > 1e-5  # the second epoch changed the weights
