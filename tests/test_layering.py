"""Every import in keras_retinanet points down: each package sits on one floor of FLOORS and imports only lower ones.

A pure-Python check (ast, no import of the package), so it runs in a fraction of a second. Module-level and
function-level imports both count: a lazy import inside a function is still an arrow, and an arrow that runs
back up is how import-order puzzles and cycles start.
"""

import ast
import pathlib
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

PACKAGE = "keras_retinanet"
ROOT = pathlib.Path(__file__).resolve().parent.parent / PACKAGE

# The floors, lowest first. A unit is a top-level module or package of keras_retinanet; it may import any unit on a
# lower floor and its own modules, never a unit on its own floor or above. '__version__' is the version string the
# package's __init__ defines before anything else (it imports nothing at module level); 'keras_retinanet' is that
# __init__ itself, the public facade whose names (load_detector, Detector) load the inference package on first use.
FLOORS: List[Tuple[str, ...]] = [
    ("errors", "__version__"),
    ("atomic_files", "drawing"),  # files written through a rename; boxes and captions drawn on images (OpenCV)
    ("anchors",),  # numpy anchors, box coding, matching, and their defaults (anchors.defaults)
    ("config",),  # RetinaNetConfig, the defaults table, the model's DetectorSpec, the .ini anchor file
    ("distribute", "initializers", "losses", "backend"),  # Keras/TensorFlow building blocks
    ("optimizers",),  # the training model's optimizer: made, compiled, swapped, its schedule and weight averages
    ("data",),  # per-image transforms, anchor targets of a batch, the tf.data pipeline
    ("readers",),  # the dataset readers: their base, each format's, the reader of a configuration, the demo dataset
    ("hub",),  # weights and published models by name: registry, download cache, presets
    ("layers",),
    ("checkpoint",),  # model files: reading, writing, keras-retinanet's files, training state
    ("models",),  # backbones and the RetinaNet builders
    ("export",),
    ("inference",),  # detectors: opening models, single images, tiles, exported runtimes
    ("evaluation",),
    ("callbacks",),  # every training callback, and the run folder's record
    ("engine",),  # a training run from its configuration
    ("serve",),
    ("bin",),
    ("utils", "preprocessing"),  # keras-retinanet 1.0.0's utils and preprocessing module paths, re-exporting the above
    (PACKAGE,),  # the package's __init__: the public facade
]
FLOOR_OF: Dict[str, int] = {unit: number for number, units in enumerate(FLOORS) for unit in units}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(dotted: str) -> bool:
    """Whether ``dotted`` (keras_retinanet.x.y) names a module or package of the source tree."""
    relative = pathlib.Path(*dotted.split(".")[1:]) if "." in dotted else pathlib.Path()
    return (ROOT / relative).with_suffix(".py").is_file() or (ROOT / relative / "__init__.py").is_file()


def unit_of(dotted: str) -> str:
    """The unit of FLOORS a dotted name belongs to: its first part below keras_retinanet ('__version__' for the
    version string, the package itself for the root __init__)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def imported_names(module: str, is_package: bool, node: ast.AST) -> Iterator[str]:
    """The keras_retinanet modules (or the root's '__version__') an import statement reaches."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE)
        return
    if not isinstance(node, ast.ImportFrom):
        return
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != PACKAGE:
        return
    reached = []
    for alias in node.names:
        # `from keras_retinanet.x import y` reaches y when y is a module of its own, else x
        submodule = f"{target}.{alias.name}"
        if is_module(submodule):
            name = submodule
        elif target == PACKAGE and alias.name == "__version__":
            name = f"{PACKAGE}.__version__"
        else:
            name = target
        if name not in reached:
            reached.append(name)
    yield from reached


def upward_imports() -> List[str]:
    """'file:line: a -> b (floor i -> floor j)' for every import of a unit on the importer's floor or above."""
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        module = module_name(path)
        source_unit = unit_of(module)
        tree = ast.parse(path.read_text(encoding="utf8"), filename=str(path))
        for node in ast.walk(tree):
            for target in imported_names(module, path.name == "__init__.py", node):
                target_unit = unit_of(target)
                if target_unit == source_unit:
                    continue
                source_floor, target_floor = FLOOR_OF.get(source_unit), FLOOR_OF.get(target_unit)
                if source_floor is None or target_floor is None or target_floor >= source_floor:
                    problems.append(
                        f"{path.relative_to(ROOT.parent)}:{node.lineno}: {module} -> {target} "
                        f"(floor {describe(source_unit, source_floor)} imports floor {describe(target_unit, target_floor)})"
                    )
    return problems


def describe(unit: str, floor: Optional[int]) -> str:
    return f"{floor} '{unit}'" if floor is not None else f"'{unit}' (in no floor of FLOORS)"


def test_every_unit_of_the_package_has_a_floor():
    units = {path.stem for path in ROOT.glob("*.py") if path.stem != "__init__"}
    units |= {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert sorted(units - set(FLOOR_OF)) == []
    assert sorted(set(FLOOR_OF) - units - {"__version__", PACKAGE}) == [], "FLOORS names a unit that is gone"


def test_the_version_string_needs_no_import():
    """Reading ``keras_retinanet.__version__`` (config and the run records do) loads nothing else."""
    tree = ast.parse((ROOT / "__init__.py").read_text(encoding="utf8"))
    assert [node.lineno for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))] == []


def test_imports_only_point_down():
    problems = upward_imports()
    assert problems == [], "imports from the same floor or above:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from ..config.defaults import DEFAULTS", ["keras_retinanet.config.defaults"]),
        ("from .. import hub, __version__", ["keras_retinanet.hub", "keras_retinanet.__version__"]),
        ("def f():\n    from keras_retinanet.inference import load_detector", ["keras_retinanet.inference"]),
        ("import keras_retinanet.models.retinanet", ["keras_retinanet.models.retinanet"]),
        ("import numpy\nfrom typing import List", []),
    ],
)
def test_the_check_sees_relative_absolute_and_lazy_imports(source, expected):
    """The parser behind the check, on the import forms the package uses (seen from keras_retinanet/anchors/x.py)."""
    tree = ast.parse(source)
    found = [name for node in ast.walk(tree) for name in imported_names("keras_retinanet.anchors.x", False, node)]
    assert found == expected
