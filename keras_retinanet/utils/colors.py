"""Fixed per-class colours for drawing, the same as keras-retinanet's."""

import warnings

# Default colour for labels past the table: green, as keras-retinanet.
DEFAULT_COLOR = (0, 255, 0)

# 80 fully saturated colours, hues i/80 for i in 0..79 (HSV -> RGB, scaled to 255 and truncated), in the
# shuffled order keras-retinanet fixed so that neighbouring labels get distinct colours. Kept identical so
# that images drawn by both projects look the same.
COLORS = (
    (31, 0, 255), (0, 159, 255), (255, 95, 0), (255, 19, 0), (255, 0, 0),
    (255, 38, 0), (0, 255, 25), (255, 0, 133), (255, 172, 0), (108, 0, 255),
    (0, 82, 255), (0, 255, 6), (255, 0, 152), (223, 0, 255), (12, 0, 255),
    (0, 255, 178), (108, 255, 0), (184, 0, 255), (255, 0, 76), (146, 255, 0),
    (51, 0, 255), (0, 197, 255), (255, 248, 0), (255, 0, 19), (255, 0, 38),
    (89, 255, 0), (127, 255, 0), (255, 153, 0), (0, 255, 255), (0, 255, 216),
    (0, 255, 121), (255, 0, 248), (70, 0, 255), (0, 255, 159), (0, 216, 255),
    (0, 6, 255), (0, 63, 255), (31, 255, 0), (255, 57, 0), (255, 0, 210),
    (0, 255, 102), (242, 255, 0), (255, 191, 0), (0, 255, 63), (255, 0, 95),
    (146, 0, 255), (184, 255, 0), (255, 114, 0), (0, 255, 235), (255, 229, 0),
    (0, 178, 255), (255, 0, 114), (255, 0, 57), (0, 140, 255), (0, 121, 255),
    (12, 255, 0), (255, 210, 0), (0, 255, 44), (165, 255, 0), (0, 25, 255),
    (0, 255, 140), (0, 101, 255), (0, 255, 82), (223, 255, 0), (242, 0, 255),
    (89, 0, 255), (165, 0, 255), (70, 255, 0), (255, 0, 172), (255, 76, 0),
    (203, 255, 0), (204, 0, 255), (255, 0, 229), (255, 133, 0), (127, 0, 255),
    (0, 235, 255), (0, 255, 197), (255, 0, 191), (0, 44, 255), (50, 255, 0),
)


def label_color(label):
    """The drawing colour of a class label.

    Args:
        label: integer class label (numpy integers and integral floats are accepted).

    Returns:
        A 3-tuple of ints in 0..255, used as-is as a BGR colour by OpenCV (as keras-retinanet did).
        Labels outside 0..79 get green, with a warning.
    """
    label = int(label)
    if 0 <= label < len(COLORS):
        return COLORS[label]
    warnings.warn(f"Label {label} has no color, returning default.", stacklevel=2)
    return DEFAULT_COLOR
