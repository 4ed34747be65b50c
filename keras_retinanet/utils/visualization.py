"""keras-retinanet's ``utils.visualization``: boxes, captions, detections and annotations drawn on images.

The code lives in :mod:`keras_retinanet.drawing`.
"""

from ..drawing import draw_annotations, draw_box, draw_boxes, draw_caption, draw_detections

__all__ = ["draw_annotations", "draw_box", "draw_boxes", "draw_caption", "draw_detections"]
