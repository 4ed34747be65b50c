"""Run a doc's blocks in order, in a prepared folder, as a reader would: bash blocks command by command, Python
blocks in one namespace per doc (a later block may use what an earlier one made).

Commands run as described in :mod:`helpers.docs_shell`. ``retinanet-serve`` is started on a free port (the docs
say 8000; every ``127.0.0.1:8000`` of the doc's later commands is pointed at the port it got), waited for until
``/health`` answers, its page at ``/`` fetched, and stopped with SIGTERM when the doc ends (exit status 0, as the
docs promise). ``curl`` runs as itself; an answer of ``/predict`` must be the detections' JSON.
"""

import contextlib
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Dict, List, Optional

from helpers.docs_blocks import FLAG_DIRECTIVES, ROOT, RUN_LANGUAGES, Block, DocsError
from helpers.docs_shell import (
    check_ci_command,
    check_pip,
    check_marks,
    check_shortening_used,
    commands_of,
    scripts,
    server_port,
    shortened,
)

DOCS_PORT = 8000  # the port the docs name
SERVER_START_S = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


class DocRun:
    """One doc's run: its folder (the current directory while it runs), environment, namespace and server."""

    def __init__(self, path: str, folder: str, monkeypatch):
        self.path = path
        self.folder = folder
        self.monkeypatch = monkeypatch
        self.namespace: Dict[str, object] = {"__name__": "__docs__"}
        self.server: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.log: List[str] = []  # what each step printed, for a failure's message
        monkeypatch.chdir(folder)

    # ------------------------------------------------------------------------------------------------ blocks
    def run(self, block: Block) -> None:
        if block.language not in RUN_LANGUAGES:
            return  # shown, not run: checked by test_shown_files_are_well_formed
        check_marks(block)
        if block.directives and set(block.directives) & set(FLAG_DIRECTIVES):
            return  # marked: needs what the suite does not have
        if block.language == "python":
            self.run_python(block.text, block.where)
        elif block.language == "bash":
            commands = commands_of(block)
            check_shortening_used(block, commands)
            for command in commands:
                self.run_command(block, shortened(block, command))

    def run_python(self, code: str, where: str, namespace: Optional[dict] = None) -> None:
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, where, "exec"), self.namespace if namespace is None else namespace)
        except Exception as error:
            raise DocsError(f"{where}: the Python block raised {type(error).__name__}: {error}\n{out.getvalue()}") from error
        self.log.append(out.getvalue())

    # ---------------------------------------------------------------------------------------------- commands
    def run_command(self, block: Block, command: List[str]) -> None:
        program = command[0]
        if program == "export":
            name, _, value = command[1].partition("=")
            self.monkeypatch.setenv(name, value)
        elif program == "retinanet-serve":
            self.start_server(block, command)
        elif program.startswith("retinanet-"):
            self.run_entry_point(block, command)
        elif program in ("python", "python3") and command[1:3] == ["-m", "pip"]:
            check_pip(block, command)
        elif program in ("pip", "pip3"):
            check_pip(block, command)
        elif program in ("python", "python3") and command[1:2] == ["-c"]:
            self.run_python(command[2], f"{block.where} ({program} -c)", namespace={"__name__": "__main__"})
        elif program == "ruff" or command[:3] == ["python3", "-m", "pytest"]:
            check_ci_command(block, command)
        elif program == "curl":
            self.run_curl(block, command)
        else:
            raise DocsError(f"{block.where}: the docs runner does not know `{program}`: write the step another way")

    def run_entry_point(self, block: Block, command: List[str]) -> None:
        import keras

        module, function = scripts()[command[0]].split(":")
        main = getattr(__import__(module, fromlist=[function]), function)
        keras.utils.clear_session(free_memory=False)  # a fresh process's Keras state, as the script would have
        out = io.StringIO()
        code = 0
        started = time.perf_counter()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                main(command[1:])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        finally:
            logging.getLogger("keras_retinanet").propagate = True
        self.log.append(f"$ {' '.join(command)}  ({time.perf_counter() - started:.1f} s)\n{out.getvalue()}")
        if code:
            raise DocsError(f"{block.where}: `{' '.join(command)}` exited with status {code}:\n{tail(out.getvalue())}")

    def run_curl(self, block: Block, command: List[str]) -> None:
        command = [self.local(token) for token in command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=self.folder)
        if result.returncode:
            raise DocsError(f"{block.where}: `{' '.join(command)}` failed ({result.returncode}): {result.stderr}")
        url = next(token for token in command if token.startswith("http"))
        if "/predict" in url:
            try:
                answer = json.loads(result.stdout)
            except json.JSONDecodeError:
                raise DocsError(f"{block.where}: /predict answered no JSON: {result.stdout[:300]}") from None
            if "boxes" not in answer:
                raise DocsError(f"{block.where}: /predict answered {answer}")
        self.log.append(f"$ {' '.join(command)}\n{result.stdout[:500]}")

    def local(self, token: str) -> str:
        """A token with the docs' port replaced by the running server's."""
        if self.port is None:
            return token
        for host in ("127.0.0.1", "localhost"):
            token = token.replace(f"{host}:{DOCS_PORT}", f"{host}:{self.port}")
        return token

    # ------------------------------------------------------------------------------------------------ server
    def start_server(self, block: Block, command: List[str]) -> None:
        self.stop_server()
        self.port = free_port()
        argv = list(command[1:])
        if server_port(command) is not None:
            at = argv.index("--port")
            del argv[at:at + 2]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
        log = open(os.path.join(self.folder, f"serve_{self.port}.log"), "w")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "keras_retinanet.bin.serve", *argv, "--port", str(self.port)],
            cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.server_log = log.name
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise DocsError(f"{block.where}: `{' '.join(command)}` stopped: {tail(self.read_server_log())}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            time.sleep(0.5)
        else:
            raise DocsError(f"{block.where}: `{' '.join(command)}` did not answer /health in {SERVER_START_S} s")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=30) as answer:
            page = answer.read().decode("utf8")
        if answer.status != 200 or "<html" not in page.lower():
            raise DocsError(f"{block.where}: the server's page at / is not HTML: {page[:200]}")

    def read_server_log(self) -> str:
        with open(self.server_log, encoding="utf8", errors="replace") as file:
            return file.read()

    def stop_server(self) -> None:
        if self.server is None:
            return
        server, self.server = self.server, None
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise DocsError(f"{self.path}: retinanet-serve did not stop on SIGTERM") from None
        if code != 0:
            raise DocsError(f"{self.path}: retinanet-serve exited with {code} on SIGTERM: {tail(self.read_server_log())}")

    def close(self) -> None:
        self.stop_server()
