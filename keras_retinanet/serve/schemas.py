"""What the API answers and takes, as OpenAPI schemas (FastAPI's /docs shows them)."""

from typing import Dict, List

from pydantic import BaseModel, Field


class DetectionsBody(BaseModel):
    """The detections of one image, best first, in the image's own pixels."""

    boxes: List[List[float]] = Field(description="[x1, y1, x2, y2] of each detection, in the image's pixels")
    scores: List[float] = Field(description="each detection's score, best first")
    labels: List[int] = Field(description="each detection's label (class index)")
    names: List[str] = Field(description="each detection's class name")
    counts: Dict[str, int] = Field(description="detections per class name, in label order")
    width: int = Field(description="the image's width in pixels")
    height: int = Field(description="the image's height in pixels")
    capped: bool = Field(description="whether a cap on the number of detections bound (a tile's, or the image's "
                         "max_detections): more objects were found than kept")


class ErrorBody(BaseModel):
    error: str


# /predict's body: the image's bytes, or a multipart form with the file in field 'image'.
PREDICT_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "The image: its bytes as the body (image/jpeg, image/png, image/bmp, image/tiff, image/webp, "
        "...) or a multipart form with the file in field 'image'.",
        "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["image"],
                           "properties": {"image": {"type": "string", "format": "binary"}}}
            },
        },
    }
}
