"""What the docs test does with a doc's shell commands: split a block into commands, shorten a run as its directive
says, and know each command (the package's commands and parsers, the few other tools the docs name).

The package's commands run in the test's process (``main(argv)``, as the installed scripts call it, TensorFlow
loaded once); ``retinanet-serve`` runs as a process of its own (it serves until stopped). Tools that would act on
the environment itself are checked instead of run: ``pip install`` (the extras it names exist and are installed
here), ``ruff check .`` and ``pytest`` (the commands ``.ci/run`` runs; a marker expression names declared markers).
"""

import argparse
import configparser
import importlib
import os
import re
import shlex
import tomllib
from typing import Dict, List, Optional, Sequence

from helpers.docs_blocks import FLAG_DIRECTIVES, ROOT, SHORTENING_OPTIONS, Block, DocsError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "0.0.0.0")
URL = re.compile(r"\b(?:https?|ftp)://([^/\s:'\"#?]+)")
SHELL_OPERATORS = ("|", "||", ";", "&", ">", ">>", "<", "(", ")")


def scripts() -> Dict[str, str]:
    """{command: 'module:function'} as pyproject.toml installs them."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as file:
        return tomllib.load(file)["project"]["scripts"]


def optional_dependencies() -> Dict[str, List[str]]:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as file:
        return tomllib.load(file)["project"]["optional-dependencies"]


def ci_commands() -> List[List[str]]:
    """The commands of .ci/run, as tokens (comments and shell plumbing left out)."""
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf8") as file:
        lines = [line.strip() for line in file]
    return [shlex.split(line) for line in lines if line.startswith(("python3 ", "ruff "))]


class _Captured(Exception):
    def __init__(self, parser):
        super().__init__("parser captured")
        self.parser = parser


_PARSERS: Dict[str, argparse.ArgumentParser] = {}


def parser_of(command: str) -> argparse.ArgumentParser:
    """The argument parser a command builds (its parse_args stopped at the parse), cached."""
    if command not in _PARSERS:
        if command not in scripts():
            raise DocsError(f"no command {command!r}; the package installs {', '.join(scripts())}")
        from keras_retinanet.bin import parsing

        module = importlib.import_module(scripts()[command].split(":")[0])
        original = parsing.CommandParser.parse_known_args

        def capture(self, args=None, namespace=None):
            raise _Captured(self)

        parsing.CommandParser.parse_known_args = capture
        try:
            module.parse_args([])
        except _Captured as captured:
            _PARSERS[command] = captured.parser
        finally:
            parsing.CommandParser.parse_known_args = original
    return _PARSERS[command]


def options_of(command: str) -> set:
    """Every option string of a command and of its dataset subcommands."""
    return set(parser_of(command)._options(None))


def subcommands_of(command: str) -> set:
    subcommands = parser_of(command)._subcommands()
    return set(subcommands.choices) if subcommands is not None else set()


def benchmark_options(script: str) -> set:
    """The options a benchmark script (or bench_shared, which it builds on) declares, read from its source."""
    found = set()
    for name in (script, os.path.join("benchmarks", "bench_shared.py")):
        with open(os.path.join(ROOT, name), encoding="utf8") as file:
            found.update(re.findall(r"""["'](--[a-z0-9][a-z0-9-]*)["']""", file.read()))
    return found


def commands_of(block: Block) -> List[List[str]]:
    """The block's commands as tokens: lines joined at a trailing backslash, comments dropped, split at `&&`.
    Pipes, redirections and the like are refused: the runner runs simple commands only."""
    text = re.sub(r"\\\n", " ", block.text)
    commands = []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError as error:
            raise DocsError(f"{block.where}: cannot split {line!r}: {error}") from None
        current: List[str] = []
        for token in tokens:
            if token in SHELL_OPERATORS:
                raise DocsError(f"{block.where}: the docs runner runs simple commands joined by && only, not {token!r}")
            if token == "&&":
                commands.append(current)
                current = []
            else:
                current.append(token)
        if current:
            commands.append(current)
    return [command for command in commands if command]


def shortened(block: Block, command: List[str]) -> List[str]:
    """The command with the block's `shorten` options put in: before its dataset subcommand (they are the command's
    own options) or at the end. Raises DocsError where an option would lengthen the run (a value above the one the
    command gives) or the command does not have it."""
    pairs = block.shortening
    if not pairs or not command[0].startswith("retinanet-"):
        return command
    offered = options_of(command[0])
    options = []
    for option, value in zip(pairs[::2], pairs[1::2]):
        if option not in offered:
            continue
        if option in command[1:]:
            given = command[command.index(option, 1) + 1]
            if int(value) > int(given):
                raise DocsError(f"{block.where}: 'shorten {option} {value}' would lengthen `{' '.join(command)}`")
        options += [option, value]
    if not options:
        return command
    names = subcommands_of(command[0])
    place = next((i for i, token in enumerate(command) if i > 0 and token in names), len(command))
    return command[:place] + options + command[place:]


def check_shortening_used(block: Block, commands: Sequence[List[str]]) -> None:
    """Every option of a `shorten` directive is taken by some command of its block."""
    pairs = block.shortening
    for option in pairs[::2]:
        assert option in SHORTENING_OPTIONS
        if not any(command[0].startswith("retinanet-") and option in options_of(command[0]) for command in commands):
            raise DocsError(f"{block.where}: no command of the block takes 'shorten {option}'")


def downloads(tokens_or_text) -> List[str]:
    """What in a block would download: URLs to other machines, published model names (presets, weights)."""
    from keras_retinanet import hub

    text = tokens_or_text if isinstance(tokens_or_text, str) else " ".join(tokens_or_text)
    found = [host for host in URL.findall(text) if host not in LOCAL_HOSTS]
    names = set(hub.preset_names()) | set(hub.weights_names())
    for word in re.findall(r"[\w.]+", text):
        if word in names:
            found.append(word)
    return found


def required_marks(block: Block) -> set:
    """The not-run marks a block must carry, from what it does: download (a URL to another machine, a published
    model's name), train on several GPUs (``--strategy mirrored``), or on machines TF_CONFIG names."""
    marks = set()
    if downloads(block.text):
        marks.add("needs-internet")
    if "--strategy mirrored" in block.text:
        marks.add("needs-gpus")
    if "TF_CONFIG" in block.text or "--strategy multi-worker" in block.text:
        marks.add("needs-cluster")
    return marks


def check_marks(block: Block) -> None:
    """A block carries exactly the not-run marks what it does calls for (DocsError naming the difference)."""
    given = {directive for directive in block.directives if directive in FLAG_DIRECTIVES}
    required = required_marks(block)
    for mark in sorted(given - required):
        what = {"needs-internet": "names no URL or published model", "needs-gpus": "uses no --strategy mirrored",
                "needs-cluster": "sets no TF_CONFIG for --strategy multi-worker"}[mark]  # fmt: skip
        raise DocsError(f"{block.where}: marked {mark} but {what}")
    for mark in sorted(required - given):
        found = downloads(block.text) if mark == "needs-internet" else mark
        raise DocsError(f"{block.where}: {found} but not marked <!-- docs-test: {mark} -->")


def check_pip(block: Block, command: List[str]) -> None:
    """`pip install [-e] .[extras]` in the repository: each extra is declared and its packages are installed."""
    import importlib.metadata

    specs = [token for token in command[command.index("install") + 1:] if not token.startswith("-")]
    if not specs:
        raise DocsError(f"{block.where}: `{' '.join(command)}` installs nothing")
    extras_declared = optional_dependencies()
    for spec in specs:
        match = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", spec)
        if match is None:
            raise DocsError(f"{block.where}: the docs install this repository ('.' or '.[extra]'), not {spec!r}")
        for extra in filter(None, (match.group(1) or "").split(",")):
            if extra not in extras_declared:
                raise DocsError(f"{block.where}: no extra {extra!r} in pyproject.toml ({', '.join(extras_declared)})")
            for requirement in extras_declared[extra]:
                name = re.split(r"[<>=!~\[; ]", requirement)[0]
                try:
                    importlib.metadata.version(name)
                except importlib.metadata.PackageNotFoundError:
                    raise DocsError(f"{block.where}: {name} of extra {extra!r} is not installed here") from None


def check_ci_command(block: Block, command: List[str]) -> None:
    """`ruff check .` and `python3 -m pytest ...` are what .ci/run runs (pytest may add `-m EXPR` with markers
    that pytest.ini declares)."""
    ci = ci_commands()
    if command in ci:
        return
    if command[:3] == ["python3", "-m", "pytest"] and "-m" in command[3:]:
        at = command.index("-m", 3)
        expression = command[at + 1]
        rest = command[:at] + command[at + 2:]
        parser = configparser.ConfigParser()
        parser.read(os.path.join(ROOT, "pytest.ini"))
        declared = {line.split(":")[0].strip() for line in parser["pytest"]["markers"].splitlines() if line.strip()}
        markers = set(re.findall(r"\w+", expression)) - {"and", "or", "not"}
        if rest in ci and markers <= declared:
            return
        raise DocsError(f"{block.where}: `{' '.join(command)}`: markers {sorted(markers - declared)} undeclared "
                        "or not .ci/run's pytest command")  # fmt: skip
    raise DocsError(f"{block.where}: `{' '.join(command)}` is not a command of .ci/run ({ci})")


def server_port(command: List[str]) -> Optional[int]:
    """The port a `retinanet-serve` command names (None: its default)."""
    if "--port" in command:
        return int(command[command.index("--port") + 1])
    return None
