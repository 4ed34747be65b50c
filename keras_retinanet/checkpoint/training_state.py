"""What a snapshot stores besides the model: the training state (epoch, callbacks' schedules, seed)
and, in Keras 3 ``.h5`` files, the optimizer's variables.
"""

import json
import zipfile
from typing import Any, Dict, Optional

import h5py
import numpy as np

from .storage import decode_text, read_stored_json

TRAINING_STATE_KEY = "keras_retinanet_training_state"


def write_training_state(filepath: str, state: Dict[str, Any]) -> None:
    """Store a JSON-serialisable dict in a model file this package wrote.

    In a ``.h5`` file it is an attribute of the root group; in a ``.keras`` archive an
    extra member (Keras ignores both). Call it on the temporary file of
    :func:`keras_retinanet.atomic_files.save_model_atomically` so that the model and
    its state appear together.
    """
    text = json.dumps(state, sort_keys=True)
    if filepath.lower().endswith(".keras"):
        with zipfile.ZipFile(filepath, "a") as archive:
            archive.writestr(TRAINING_STATE_KEY + ".json", text)
    else:
        with h5py.File(filepath, "a") as handle:
            handle.attrs[TRAINING_STATE_KEY] = text


def read_training_state(filepath: str) -> Optional[Dict[str, Any]]:
    """The dict :func:`write_training_state` stored, or None (files of other writers, older snapshots)."""
    return read_stored_json(filepath, TRAINING_STATE_KEY + ".json", TRAINING_STATE_KEY, "the training state")


def read_h5_optimizer_weights(filepath: str) -> Dict[str, np.ndarray]:
    """Optimizer variables a Keras 3 ``.h5`` file stores, by variable path.

    Returns:
        dict path -> numpy array (empty when the file holds no optimizer state).
    """
    values = {}
    with h5py.File(filepath, "r") as handle:
        if "optimizer_weights" not in handle:
            return values
        group = handle["optimizer_weights"]
        for name in group.attrs.get("weight_names", []):
            name = decode_text(name)
            if name in group:
                values[name] = np.asarray(group[name])
    return values
