"""Helpers that act on whole models."""


def freeze(model):
    """Make every layer of ``model`` untrainable; returns the model."""
    for layer in model.layers:
        layer.trainable = False
    return model
