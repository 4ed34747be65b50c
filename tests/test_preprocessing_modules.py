"""keras_retinanet.preprocessing holds keras-retinanet 1.0.0's module names only, each a thin re-export of the readers
in keras_retinanet.readers (one copy of the code, as keras_retinanet.utils does for its modules)."""

import ast
import importlib
import os

import pytest
from helpers.keras_retinanet_names import KERAS_RETINANET_PREPROCESSING

import keras_retinanet.preprocessing

PREPROCESSING = os.path.dirname(keras_retinanet.preprocessing.__file__)


def test_preprocessing_has_only_keras_retinanet_module_names():
    modules = {name[: -len(".py")] for name in os.listdir(PREPROCESSING) if name.endswith(".py") and name != "__init__.py"}
    assert modules == set(KERAS_RETINANET_PREPROCESSING)


@pytest.mark.parametrize("module_name", sorted(KERAS_RETINANET_PREPROCESSING))
def test_keras_retinanet_names_are_the_readers_own_objects(module_name):
    module = importlib.import_module(f"keras_retinanet.preprocessing.{module_name}")
    readers = importlib.import_module(f"keras_retinanet.readers.{module_name}")
    for name in sorted(KERAS_RETINANET_PREPROCESSING[module_name]):
        assert getattr(module, name) is getattr(readers, name), name
    assert set(KERAS_RETINANET_PREPROCESSING[module_name]) <= set(module.__all__)
    assert all(hasattr(module, name) for name in module.__all__)


@pytest.mark.parametrize("module_name", sorted(KERAS_RETINANET_PREPROCESSING) + ["__init__"])
def test_each_module_only_re_exports(module_name):
    """A docstring, imports from the package's own modules and ``__all__``: no code of its own."""
    with open(os.path.join(PREPROCESSING, f"{module_name}.py"), encoding="utf8") as handle:
        tree = ast.parse(handle.read())
    for index, node in enumerate(tree.body):
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.ImportFrom):
            assert node.level == 2 and node.module.split(".")[0] in ("readers", "data"), ast.unparse(node)
            continue
        assert isinstance(node, ast.Assign) and [target.id for target in node.targets] == ["__all__"], ast.unparse(node)


def test_a_reader_subclassed_through_keras_retinanets_name_is_a_reader():
    """Scripts written for keras-retinanet subclass preprocessing.generator.Generator: that is the readers' base."""
    from keras_retinanet.preprocessing.generator import Generator
    from keras_retinanet.readers.reader import Reader

    assert issubclass(Generator, Reader)
    from keras_retinanet.preprocessing.csv_generator import CSVGenerator

    assert issubclass(CSVGenerator, Generator) and CSVGenerator.__module__ == "keras_retinanet.readers.csv_generator"
