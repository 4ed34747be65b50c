"""The package's own error types, so that callers can tell bad input from bugs."""


class RetinaNetError(Exception):
    """Base of every error this package raises on purpose."""


class DatasetError(RetinaNetError, ValueError):
    """Bad input data: names the file, the place in it and the problem.

    Args:
        path: the file (or folder) at fault.
        reason: what is wrong, in words a user can act on.
        line: 1-based line number (CSV rows), or None.
        where: another location inside the file (an annotation id, an XML element), or None.
    """

    def __init__(self, path, reason, line=None, where=None):
        self.path = str(path)
        self.line = line
        self.where = where
        self.reason = reason
        location = self.path
        if line is not None:
            location += f" line {line}"
        if where is not None:
            location += f" ({where})"
        super().__init__(f"{location}: {reason}")


class ModelFileError(RetinaNetError, ValueError):
    """A model or weight file that cannot be used; names the file and the problem."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelError(RetinaNetError, ValueError):
    """A model, backbone or model setting that does not fit what was asked of it."""


class ExportError(RetinaNetError, ValueError):
    """An export that cannot be done as asked: a bad format, option or missing package, or a model the format cannot
    hold (:mod:`keras_retinanet.export`, and keras-retinanet's Keras 2 format in :mod:`keras_retinanet.models.legacy`)."""
