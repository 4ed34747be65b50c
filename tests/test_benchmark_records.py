"""What a benchmark result records about the machine's load: the load average before the run is read at the process's
start (bench_shared reads it when first imported, and every benchmark imports it before anything else), and a
committed result whose reading was taken at the end says so."""

import ast
import glob
import json
import os
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
STANDARD_LIBRARY = set(sys.stdlib_module_names) | {"__future__"}


def _scripts():
    """The benchmark files that use bench_shared (every script that writes a result, and the modules they share)."""
    found = []
    for path in sorted(glob.glob(os.path.join(BENCHMARKS, "*.py"))):
        with open(path, encoding="utf8") as handle:
            if os.path.basename(path) != "bench_shared.py" and "bench_shared" in handle.read():
                found.append(os.path.basename(path))
    return found


def _imports_bench_shared(node):
    if isinstance(node, ast.ImportFrom):
        return node.module == "bench_shared"
    return isinstance(node, ast.Import) and any(alias.name == "bench_shared" for alias in node.names)


def _is_standard_import(node):
    if isinstance(node, ast.Import):
        return all(alias.name.split(".")[0] in STANDARD_LIBRARY for alias in node.names)
    return isinstance(node, ast.ImportFrom) and not node.level and node.module.split(".")[0] in STANDARD_LIBRARY


@pytest.mark.parametrize("script", _scripts())
def test_a_benchmark_imports_bench_shared_before_anything_else(script):
    """Only the docstring and standard-library imports come first; no function imports bench_shared later."""
    with open(os.path.join(BENCHMARKS, script), encoding="utf8") as handle:
        tree = ast.parse(handle.read())
    statements = tree.body[1:] if isinstance(tree.body[0], ast.Expr) else tree.body
    first = next(index for index, node in enumerate(statements) if not _is_standard_import(node))
    assert _imports_bench_shared(statements[first]), f"{script}:{statements[first].lineno} comes before bench_shared"
    later = [node.lineno for node in ast.walk(tree) if _imports_bench_shared(node) and node is not statements[first]]
    assert later == [], f"{script} imports bench_shared again at lines {later}"


def test_the_load_before_the_run_is_read_when_bench_shared_is_imported(tmp_path):
    """A run that imports bench_shared, works 1.5 s and writes: the start's reading was taken before the work."""
    output = tmp_path / "probe.json"
    script = (
        f"import sys, time\nsys.path.insert(0, {BENCHMARKS!r})\nimport bench_shared\n"
        f"time.sleep(1.5)\nbench_shared.write_result('probe', {{'x': 1}}, output={str(output)!r}, argv=['probe'])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    record = json.loads(output.read_text())
    load = record["load_average_1_5_15"]
    assert len(load["at_start"]) == 3 and len(load["at_end"]) == 3
    assert record["duration_s"] >= 1.5
    assert 0.0 <= load["at_start_read_s_after_process_start"] <= record["duration_s"] - 1.4
    assert record["results"] == {"x": 1}


def test_a_committed_result_read_at_the_end_says_so():
    """Results written before the reading moved to the start carry no read time; where their 'at_start' is the very
    reading of 'at_end' (bench_shared was imported after the work), a note says the reading is the end's."""
    undated = []
    for path in sorted(glob.glob(os.path.join(BENCHMARKS, "results", "*.json"))):
        with open(path, encoding="utf8") as handle:
            load = json.load(handle)["load_average_1_5_15"]
        if "at_start_read_s_after_process_start" in load or load["at_start"] != load["at_end"]:
            continue
        undated.append(os.path.basename(path))
        assert load.get("at_start_note", "").startswith("read at the end of the run, not before it"), path
    assert undated  # the check looks at something: eight files were written so
