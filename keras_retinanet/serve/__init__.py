"""Serving a detector over HTTP: ``retinanet-serve MODEL``, a JSON API and a page to look at detections.

    pip install 'keras3-retinanet[serve]'
    retinanet-serve model.keras            # http://127.0.0.1:8000/ : the page; /docs : the API

Modules:
    settings: :class:`ServeSettings`, the server's limits and batching (no third-party imports).
    images: an upload's bytes as a BGR uint8 image, with the checks ``read_image_bgr`` applies to files.
    batching: :class:`Batcher`, the worker thread that runs the model, gathering requests into batches.
    app: :func:`create_app`, the FastAPI application (routes, limits, the page).

FastAPI, uvicorn and python-multipart are the optional extra ``serve``; importing this package needs none of them.
"""

from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
