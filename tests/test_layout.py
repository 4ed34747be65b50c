"""The checkout's top level, as keras-retinanet users know it: setup.py, README.md, keras_retinanet/, bin/, tests/, snapshots/."""

import ast
import importlib.metadata
import os
import re
import subprocess
import tomllib

import keras_retinanet

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as file:
        return tomllib.load(file)


def test_the_top_level_holds_what_keras_retinanet_users_look_for():
    for name in ("setup.py", "README.md", "pyproject.toml"):
        assert os.path.isfile(os.path.join(ROOT, name)), name
    for name in ("keras_retinanet", "bin", "tests", "snapshots"):
        assert os.path.isdir(os.path.join(ROOT, name)), name


def test_setup_py_has_no_metadata_of_its_own():
    """pyproject.toml is the one source of metadata: setup.py imports setup and calls it without arguments."""
    with open(os.path.join(ROOT, "setup.py")) as file:
        tree = ast.parse(file.read())
    statements = tree.body
    assert len(statements) == 2
    imported, call = statements
    assert isinstance(imported, ast.ImportFrom) and imported.module == "setuptools"
    assert [alias.name for alias in imported.names] == ["setup"]
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
    assert call.value.func.id == "setup" and not call.value.args and not call.value.keywords
    project = _pyproject()["project"]
    assert project["name"] == "keras3-retinanet" and project["dynamic"] == ["version"]
    # The SPDX `license` string needs setuptools 77 (PEP 639); an older one fails to build the package.
    assert any(re.fullmatch(r"setuptools>=(\d+)", req) and int(req.split(">=")[1]) >= 77
               for req in _pyproject()["build-system"]["requires"])  # fmt: skip


def test_the_installed_package_is_the_one_pyproject_describes():
    """What the build made of pyproject.toml (setup.py beside it adds nothing): name, version and the commands."""
    distribution = importlib.metadata.distribution("keras3-retinanet")
    assert distribution.version == keras_retinanet.__version__
    installed = {entry.name: entry.value for entry in distribution.entry_points if entry.group == "console_scripts"}
    assert installed == _pyproject()["project"]["scripts"]


def test_bin_holds_one_thin_script_per_command_calling_its_entry_point():
    scripts = _pyproject()["project"]["scripts"]
    assert sorted(os.listdir(os.path.join(ROOT, "bin"))) == sorted(scripts)
    for name, entry in scripts.items():
        path = os.path.join(ROOT, "bin", name)
        assert os.access(path, os.X_OK), f"bin/{name} is not executable"
        with open(path) as file:
            text = file.read()
        module, function = entry.split(":")
        assert re.search(rf"^from {re.escape(module)} import {function}( as main)?\b", text, re.MULTILINE), name
        assert len(text.splitlines()) <= 15, f"bin/{name} should stay a thin wrapper"


def test_a_bin_script_runs_from_anywhere(tmp_path):
    result = subprocess.run(
        [os.path.join(ROOT, "bin", "retinanet-train"), "--version"], capture_output=True, text=True, cwd=tmp_path,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"retinanet-train {keras_retinanet.__version__}")


def test_snapshots_is_kept_in_a_clone_and_its_contents_are_not():
    with open(os.path.join(ROOT, "snapshots", ".gitignore")) as file:
        patterns = [line.strip() for line in file if line.strip() and not line.startswith("#")]
    assert patterns == ["*", "!.gitignore"]
    with open(os.path.join(ROOT, ".gitignore")) as file:
        assert "/snapshots/" not in file.read().split()
