"""The README and docs/*.md as a test: every Python block and shell command runs, in order, on small data; what
cannot run is marked and the mark is checked; shown files parse; links and anchors resolve; the options named
in the prose exist; docs/api.md names what the guides teach.

How a doc's blocks run (``helpers.docs_runner``, ``helpers.docs_shell``): each doc in its own copy of a prepared
folder (``helpers.docs_workspace``: files under the names the examples use), its Python blocks in one namespace,
the package's commands in this process. Directives, on the line directly above a fence:

- ``<!-- docs-test: shorten --epochs 1 --steps 2 -->``: the block's commands run with these options, which may only
  be run lengths (``--epochs``, ``--steps``, ``--max-frames``, ``--representative-samples``), each at most what the
  command gives; put before the dataset subcommand.
- ``<!-- docs-test: needs-internet -->``: not run; the block must name a URL or a published model (and a block
  that names one must be marked).
- ``<!-- docs-test: needs-gpus -->``: not run; the block must train with ``--strategy mirrored`` (several GPUs).
- ``<!-- docs-test: needs-cluster -->``: not run; the block must set TF_CONFIG for ``--strategy multi-worker``.

As in the whole suite, runs that name no weights start from random ones (KERAS_RETINANET_IMAGENET_WEIGHTS=none,
tests/conftest.py), and the proxies point nowhere, so a doc that would download fails rather than reaching out.
"""

import ast
import csv
import json
import os
import re

import pytest
from helpers.docs_blocks import (
    FLAG_DIRECTIVES,
    ROOT,
    RUN_LANGUAGES,
    Block,
    DocsError,
    anchors_of,
    blocks_of,
    doc_paths,
    inline_code,
    links_of,
    prose_of,
    read_doc,
)
from helpers.docs_runner import DocRun
from helpers.docs_shell import benchmark_options, check_marks, ci_commands, commands_of, options_of, scripts, shortened
from helpers.docs_workspace import copy_workspace, prepare_workspace

DOCS = doc_paths()
README_MAX_LINES = 200
DEMO_RUN = "snapshots/mobilenet128_0.5_demo"
DEMO_BEST = f"{DEMO_RUN}/mobilenet128_0.5_demo_best.h5"


def is_setup_block(block: Block) -> bool:
    """The README's set-up block (install, then train the demo), which the session fixture runs once."""
    return block.path == "README.md" and block.language == "bash" and "retinanet-train demo" in block.text


@pytest.fixture(scope="module")
def docs_environment(tmp_path_factory):
    """The whole module's environment: caches in a temporary folder, no way out to the internet."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("docs_home")
        patch.setenv("XDG_CACHE_HOME", str(home / "cache"))  # the demo dataset is generated there
        patch.setenv("KERAS_RETINANET_HOME", str(home / "keras_retinanet"))
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            patch.setenv(name, "http://127.0.0.1:9")
        patch.setenv("no_proxy", "127.0.0.1,localhost")
        patch.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield home


@pytest.fixture(scope="module")
def workspace(docs_environment, tmp_path_factory):
    """The prepared folder, with the README's demo run in it (its set-up block, run here once) and model.keras."""
    folder = prepare_workspace(str(tmp_path_factory.mktemp("docs_workspace")))
    setup = [block for block in blocks_of("README.md") if is_setup_block(block)]
    assert len(setup) == 1, "the README has one set-up block that trains the demo"
    with pytest.MonkeyPatch.context() as patch:
        run = DocRun("README.md", folder, patch)
        run.run(setup[0])
        assert os.path.isfile(DEMO_BEST), "the README's set-up block leaves the demo's best model where it says"
        run.run_command(setup[0], ["retinanet-convert-model", DEMO_BEST, "model.keras"])
    return folder


def runs_examples(path: str) -> bool:
    """Whether a doc has blocks to run (beyond the README's set-up block): those need the trained workspace, which
    takes a training run to make, and each takes more than the suite's 20 s, so they run in the slow lane."""
    try:
        blocks = blocks_of(path)
    except DocsError:
        return False  # reported by test_every_block_is_fenced_with_a_language_and_its_directives_are_known
    return any(block.language in RUN_LANGUAGES and not set(block.directives) & set(FLAG_DIRECTIVES)
               and not is_setup_block(block) for block in blocks)  # fmt: skip


@pytest.mark.parametrize("path", [pytest.param(path, marks=pytest.mark.slow) if runs_examples(path) else path
                                  for path in DOCS])  # fmt: skip
def test_the_examples_of_each_doc_run(path, request, tmp_path, monkeypatch):
    if not runs_examples(path):
        blocks_of(path)  # nothing to run: the rules are still checked
        return
    folder = copy_workspace(request.getfixturevalue("workspace"), str(tmp_path / "work"))
    run = DocRun(path, folder, monkeypatch)
    try:
        for block in blocks_of(path):
            if not is_setup_block(block):  # run once, by the workspace fixture
                run.run(block)
    finally:
        run.close()


# ------------------------------------------------------------------------------------------ the rules, statically
def all_blocks():
    return [block for path in DOCS for block in blocks_of(path)]


def test_the_readme_is_short():
    with open(os.path.join(ROOT, "README.md"), encoding="utf8") as file:
        assert len(file.read().splitlines()) <= README_MAX_LINES


def test_every_block_is_fenced_with_a_language_and_its_directives_are_known():
    blocks = all_blocks()  # raises DocsError on an unknown language or directive, or a stray directive
    assert {block.language for block in blocks} >= {"bash", "python"}
    for path in DOCS:
        for number, line in enumerate(prose_of(read_doc(path)).splitlines(), start=1):
            # An indented code block would hide commands from the runner.
            assert not re.match(r"^ {4,}(\$ |retinanet-|python3? |export |curl )", line), f"{path}:{number}: fence it"


def test_the_not_run_marks_are_on_exactly_the_blocks_that_need_them():
    for block in all_blocks():
        if block.language in ("bash", "python"):
            check_marks(block)


def test_a_wrong_internet_mark_fails_the_run(tmp_path, monkeypatch):
    run = DocRun("x.md", str(tmp_path), monkeypatch)
    marked = Block("x.md", 1, "bash", "retinanet-predict model.keras photo.jpg\n", ("needs-internet",))
    with pytest.raises(DocsError, match="names no URL"):
        run.run(marked)
    with pytest.raises(DocsError, match="not marked <!-- docs-test: needs-gpus -->"):
        run.run(Block("x.md", 1, "bash", "retinanet-train --strategy mirrored demo\n", ()))
    unmarked = Block("x.md", 1, "bash", "retinanet-predict resnet50_coco photo.jpg\n", ())
    with pytest.raises(DocsError, match="not marked"):
        run.run(unmarked)
    url = Block("x.md", 1, "python", "load_detector('https://example.com/model.h5')\n", ())
    with pytest.raises(DocsError, match="not marked"):
        run.run(url)


def test_shorten_only_shortens_and_goes_before_the_dataset_subcommand():
    block = Block("x.md", 1, "bash", "", ("shorten --epochs 1 --steps 2",))
    command = ["retinanet-train", "--tile", "160", "csv", "a.csv", "c.csv"]
    assert shortened(block, command) == ["retinanet-train", "--tile", "160", "--epochs", "1", "--steps", "2",
                                         "csv", "a.csv", "c.csv"]  # fmt: skip
    assert shortened(block, ["retinanet-predict", "m.keras", "x.jpg"]) == ["retinanet-predict", "m.keras", "x.jpg"]
    with pytest.raises(DocsError, match="lengthen"):
        shortened(Block("x.md", 1, "bash", "", ("shorten --epochs 9",)), ["retinanet-train", "--epochs", "3", "demo"])
    with pytest.raises(DocsError, match="may only give"):
        blocks_of("x.md", "<!-- docs-test: shorten --backbone resnet50 -->\n```bash\nretinanet-train demo\n```\n")
    with pytest.raises(DocsError, match="directly above"):
        blocks_of("x.md", "<!-- docs-test: needs-internet -->\n\n```bash\nretinanet-train demo\n```\n")


def test_shown_files_are_well_formed(tmp_path):
    from keras_retinanet.config import read_anchor_config
    from keras_retinanet.preprocessing.csv_generator import read_classes_file

    for block in all_blocks():
        path = tmp_path / f"{block.line}.{block.language}"
        path.write_text(block.text)
        if block.language == "json":
            json.loads(block.text)
        elif block.language == "ini":
            read_anchor_config(str(path))
        elif block.language == "csv":
            rows = list(csv.reader(block.text.splitlines()))
            if all(len(row) == 2 for row in rows):
                assert read_classes_file(str(path)), block.where
            else:
                assert all(len(row) == 6 for row in rows), block.where
                check_annotations(path, rows, block)


def check_annotations(path, rows, block):
    """An annotations CSV example reads with the package's reader, given the classes it names and its images."""
    import cv2
    import numpy as np
    from keras_retinanet.preprocessing.csv_generator import CSVGenerator

    classes = sorted({row[5] for row in rows if row[5]})
    (path.parent / "classes.csv").write_text("".join(f"{name},{i}\n" for i, name in enumerate(classes)))
    for row in rows:
        image = path.parent / row[0]
        image.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(image), np.zeros((400, 400, 3), np.uint8))
    reader = CSVGenerator(str(path), str(path.parent / "classes.csv"))
    assert reader.size() == len({row[0] for row in rows}), block.where


def test_every_link_and_anchor_resolves():
    for path in DOCS:
        text = read_doc(path)
        for line, target in links_of(text):
            if re.match(r"^[a-z]+://", target):
                continue
            file, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(os.path.join(ROOT, path)), file)) if file else \
                os.path.join(ROOT, path)  # fmt: skip
            assert os.path.exists(resolved), f"{path}:{line}: {target} does not exist"
            if anchor:
                assert resolved.endswith(".md"), f"{path}:{line}: an anchor into {file}"
                with open(resolved, encoding="utf8") as handle:
                    assert anchor in anchors_of(handle.read()), f"{path}:{line}: no heading for #{anchor} in {file}"


def test_the_options_the_prose_names_exist():
    """Every `--option` in inline code is an option of the command it follows, or of some command or benchmark."""
    everything = set().union(*(options_of(command) for command in scripts()))
    benchmarks = os.listdir(os.path.join(ROOT, "benchmarks"))
    for name in benchmarks:
        if name.endswith(".py"):
            everything |= benchmark_options(os.path.join("benchmarks", name))
    for path in DOCS:
        for line, span in inline_code(read_doc(path)):
            words = span.split()
            named = [word.split("=")[0] for word in words if re.match(r"^--[a-z]", word)]
            if words and words[0] in scripts():
                offered = options_of(words[0])
            elif len(words) > 1 and words[0] in ("python", "python3") and words[1].startswith("benchmarks/"):
                assert os.path.isfile(os.path.join(ROOT, words[1])), f"{path}:{line}: {words[1]}"
                offered = benchmark_options(words[1])
            else:
                offered = everything | {"--help", "--version"}
            for option in named:
                assert option in offered, f"{path}:{line}: `{span}`: {option} is not an option there"


def test_the_readme_test_command_is_the_one_ci_runs():
    commands = [command for block in blocks_of("README.md") if block.language == "bash" for command in
                commands_of(block)]  # fmt: skip
    ci = ci_commands()
    for command in ci:
        comparable = [token for token in command if token != "-q"] if "pip" in command else command
        assert any([t for t in c if t != "-q"] == comparable if "pip" in c else c == comparable for c in commands), \
            f"the README does not give .ci/run's `{' '.join(command)}`"  # fmt: skip


# ------------------------------------------------------------------------------------------------ the public API
def package_names_used(code: str):
    """The dotted keras_retinanet names a Python block imports or reaches through an imported module."""
    import importlib

    tree = ast.parse(code)
    bound = {}
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_retinanet"):
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                used.add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("keras_retinanet"):
                    bound[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound:
            base = bound[node.value.id]
            module = importlib.import_module(base) if _is_module(base) else None
            if module is not None:
                used.add(f"{base}.{node.attr}")
    return used


def _is_module(dotted):
    import importlib.util

    try:
        return importlib.util.find_spec(dotted) is not None
    except ModuleNotFoundError:
        return False


def api_text():
    return read_doc("docs/api.md")


def test_api_md_names_every_package_name_the_docs_use():
    api = api_text()
    for block in all_blocks():
        if block.language != "python":
            continue
        for name in sorted(package_names_used(block.text)):
            module, _, attribute = name.rpartition(".")
            listed = f"`{name}" in api or (f"`{module}`" in api and f"`{attribute}`" in api)
            assert listed, f"{block.where}: {name} is used but not in docs/api.md"


def test_every_name_api_md_lists_exists():
    import importlib

    import keras_retinanet

    names = set(re.findall(r"`(keras_retinanet(?:\.\w+)+)", api_text()))
    assert len(names) > 10
    for name in sorted(names):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            if _is_module(".".join(parts[:cut])):
                value = importlib.import_module(".".join(parts[:cut]))
                for attribute in parts[cut:]:
                    assert hasattr(value, attribute), f"docs/api.md names {name}, which does not exist"
                    value = getattr(value, attribute)
                break
    public = getattr(keras_retinanet, "__all__", None)
    if public is not None:  # once the package declares its public names, the page lists each
        for name in public:
            assert f"keras_retinanet.{name}" in api_text(), f"keras_retinanet.{name} is public but not in docs/api.md"
