"""The test suite's own imports: no test module imports another (shared code is in tests/helpers, fixtures in
tests/conftest.py), and keras_retinanet.utils is reached only through keras-retinanet 1.0.0's module and names.

Pure Python: the files are parsed with ast, nothing is imported.
"""

import ast
import os

from helpers.keras_retinanet_names import KERAS_RETINANET_UTILS, allowed_names

TESTS = os.path.dirname(os.path.abspath(__file__))
UTILS = "keras_retinanet.utils"


def _test_folder_modules():
    """Module names of the loose files in tests/ (test modules and conftest): never imported by another file."""
    return {name[: -len(".py")] for name in os.listdir(TESTS) if name.endswith(".py")}


def import_problems(source, filename="<source>", local_modules=frozenset()):
    """What is wrong with the imports of one file's source: a list of 'file:line: message' strings."""
    problems = []
    utils_aliases = {}  # a name bound to a keras_retinanet.utils module -> that module's keras-retinanet name

    def problem(node, message):
        problems.append(f"{filename}:{node.lineno}: {message}")

    def check_utils_module(node, module):
        if module not in KERAS_RETINANET_UTILS:
            problem(node, f"{UTILS}.{module} was never a keras-retinanet module; import the real module")
            return False
        return True

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in local_modules:
                    problem(node, f"imports the test-folder module {alias.name}; shared code belongs in tests/helpers")
                if alias.name.startswith(UTILS + "."):
                    module = alias.name[len(UTILS) + 1 :].split(".")[0]
                    if check_utils_module(node, module) and alias.asname:
                        utils_aliases[alias.asname] = module
        elif isinstance(node, ast.ImportFrom):
            module_name = node.module or ""
            if node.level or module_name.split(".")[0] in local_modules or module_name.startswith("tests."):
                problem(node, f"imports {'.' * node.level}{module_name}; shared code belongs in tests/helpers")
            names = [alias.name for alias in node.names]
            if module_name == UTILS:
                for alias in node.names:
                    if check_utils_module(node, alias.name):
                        utils_aliases[alias.asname or alias.name] = alias.name
            elif module_name.startswith(UTILS + "."):
                module = module_name[len(UTILS) + 1 :]
                if check_utils_module(node, module):
                    for name in names:
                        if name not in allowed_names(module):
                            problem(node, f"{module_name}.{name} is not keras-retinanet's; import it from its module")
            elif module_name == "keras_retinanet" and "utils" in names:
                problem(node, f"imports {UTILS} itself; import keras-retinanet's module from it by name")
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in utils_aliases:
            module = utils_aliases[node.value.id]
            if node.attr not in allowed_names(module):
                problem(node, f"{UTILS}.{module}.{node.attr} is not keras-retinanet's; import it from its module")
    return problems


def test_the_checker_finds_each_kind_of_import_it_forbids():
    source = (
        "import test_eval\n"
        "from test_export import match_detections\n"
        "from . import conftest\n"
        "from keras_retinanet.utils.atomic import save_model_atomically\n"
        "from keras_retinanet.utils.anchors import DEFAULT_BOX_MEAN, anchors_for_shape\n"
        "from keras_retinanet.utils import legacy\n"
        "from keras_retinanet.utils import anchors as ua\n"
        "ua.bbox_transform_inv\n"
        "ua.bbox_transform\n"
        "def later():\n"
        "    from scene_models import scene\n"
    )
    problems = import_problems(source, "t.py", frozenset({"test_eval", "test_export", "conftest", "scene_models"}))
    assert [p.split(": ")[0] for p in problems] == ["t.py:1", "t.py:2", "t.py:3", "t.py:4", "t.py:5", "t.py:6",
                                                     "t.py:11", "t.py:8"]  # fmt: skip
    allowed = (
        "from helpers.datasets import SMALL\n"
        "from keras_retinanet.utils.eval import _compute_ap, evaluate\n"
        "from keras_retinanet.utils import anchors as ua\n"
        "ua.compute_overlap\n"
        "import keras_retinanet.utils.image\n"
    )
    assert import_problems(allowed, "ok.py", frozenset({"test_eval"})) == []


def test_no_test_file_imports_another_or_a_name_keras_retinanet_utils_never_had():
    local_modules = frozenset(_test_folder_modules())
    files = [os.path.join(TESTS, name) for name in sorted(os.listdir(TESTS)) if name.endswith(".py")]
    helpers = os.path.join(TESTS, "helpers")
    files += [os.path.join(helpers, name) for name in sorted(os.listdir(helpers)) if name.endswith(".py")]
    problems = []
    for path in files:
        with open(path, encoding="utf-8") as file:
            problems += import_problems(file.read(), os.path.relpath(path, os.path.dirname(TESTS)), local_modules)
    assert not problems, "\n".join(problems)
