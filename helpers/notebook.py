"""Machinery for the notebooks (and the tests, which do the same things): waiting for a
condition, starting worker processes, and skipping cells that need a cluster.

Nothing here is part of a queue; it is what a lesson needs around one.
"""

from __future__ import annotations

import ast
import builtins
import os
import subprocess
import sys
import time
from collections.abc import Callable, Container, Mapping

import redis

__all__ = ["skip_cells_using", "start_worker_process", "wait_for"]


def wait_for(condition: Callable[[], object], seconds: float = 60.0, what: str = "the condition") -> None:
    """Call ``condition()`` every 20 ms until it returns something true.

    A condition that raises (a key or group not there yet, a server still starting)
    counts as "not yet". Past ``seconds``, raise ``TimeoutError`` naming ``what`` and
    the last error the condition raised, if any.
    """
    deadline = time.monotonic() + seconds
    last_error: BaseException | None = None
    while True:
        try:
            if condition():
                return
            last_error = None
        except (redis.RedisError, LookupError, StopIteration, ValueError, TypeError) as exc:
            last_error = exc
        if time.monotonic() > deadline:
            said = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise TimeoutError(f"gave up after {seconds:g} s waiting for {what}{said}")
        time.sleep(0.02)


def start_worker_process(
    url: str,
    stream: str,
    group: str,
    consumer: str,
    handler: str,
    *,
    options: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    quiet: bool = True,
) -> subprocess.Popen[str]:
    """Start ``python -m helpers.tools.worker`` as a child process.

    ``options`` become command-line flags (``{"batch": 10}`` is ``--batch 10``); ``env`` is
    added to this process's environment (the demo handlers read ``RECORD_URL`` and
    ``RECORD_KEY`` from it). With ``quiet``, its log goes nowhere; otherwise to a pipe
    (``process.stderr``, text) that the caller must read, or a chatty worker blocks on it.
    """
    command = [sys.executable, "-m", "helpers.tools.worker", "--url", url, "--stream", stream]
    command += ["--group", group, "--consumer", consumer, "--handler", handler]
    for name, value in (options or {}).items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    return subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if quiet else subprocess.PIPE,
        text=True,
    )


def _cell_needs(source: str, name: str, defined: Container[str]) -> bool:
    """True if the code ``source`` reads the variable ``name`` (or an attribute of that name,
    as ``helpers.name``), or reads a variable that is neither defined in ``defined`` (the
    kernel's namespace), nor a builtin, nor bound in the code itself: a variable that a
    skipped cell would have defined."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.Attribute) and node.attr == name:
            return True
    if name in loaded:
        return True
    return any(var not in bound and var not in defined and not hasattr(builtins, var) for var in loaded)


def skip_cells_using(name: str, reason: str) -> None:
    """In a notebook: from now on, replace every cell that uses the variable ``name``
    (or an attribute of that name, such as ``helpers.name``, or a variable that only such a
    cell would have defined) with a ``print`` of
    ``reason``, so that a notebook without a cluster skips those cells cleanly and
    still runs the rest. Outside IPython it does nothing.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def skip(lines: list[str]) -> list[str]:
        if _cell_needs("".join(lines), name, shell.user_ns):
            return [f"print({reason!r})\n"]
        return lines

    shell.input_transformers_post.append(skip)
