"""``.devcontainer/devcontainer.json``: GitHub Codespaces sets the course up with ``./course.sh`` and
opens JupyterLab.

The file is validated against the devcontainer.json schema, restated below for the properties the
course uses from the Dev Container specification's reference
(https://containers.dev/implementors/json_reference/ and the spec's ``devContainer.base.schema.json``
and Codespaces customizations): types, enums, bounds, and no property the specification does not
define (its schema rejects those too). Neither the official schema nor a package that carries it can
be fetched here (no network beyond the package registries), so it is restated, not copied. Then the
command the container runs is run here, with its own flags, to show JupyterLab accepts them.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import helpers

ROOT = Path(__file__).resolve().parent.parent
DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"

_COMMAND: dict[str, Any] = {
    "type": ["string", "array", "object"],
    "items": {"type": "string"},
    "additionalProperties": {"type": ["string", "array"], "items": {"type": "string"}},
}
_PORT_ATTRIBUTES: dict[str, Any] = {
    "type": "object",
    "properties": {
        "label": {"type": "string"},
        "onAutoForward": {
            "enum": ["notify", "openBrowser", "openBrowserOnce", "openPreview", "silent", "ignore"]
        },
        "elevateIfNeeded": {"type": "boolean"},
        "requireLocalPort": {"type": "boolean"},
        "protocol": {"enum": ["http", "https"]},
    },
    "additionalProperties": False,
}
# The devcontainer.json schema, for an image-based container and the properties used here.
DEVCONTAINER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["image"],
    "properties": {
        "$schema": {"type": "string"},
        "name": {"type": "string"},
        "image": {"type": "string", "minLength": 1},
        "hostRequirements": {
            "type": "object",
            "properties": {
                "cpus": {"type": "integer", "minimum": 1},
                "memory": {"type": "string", "pattern": r"^\d+([tgmk]b)?$"},
                "storage": {"type": "string", "pattern": r"^\d+([tgmk]b)?$"},
            },
            "additionalProperties": False,
        },
        "onCreateCommand": _COMMAND,
        "updateContentCommand": _COMMAND,
        "postCreateCommand": _COMMAND,
        "postStartCommand": _COMMAND,
        "postAttachCommand": _COMMAND,
        "waitFor": {
            "enum": [
                "initializeCommand",
                "onCreateCommand",
                "updateContentCommand",
                "postCreateCommand",
                "postStartCommand",
            ]
        },
        "forwardPorts": {
            "type": "array",
            "items": {
                "oneOf": [
                    {"type": "integer", "minimum": 0, "maximum": 65535},
                    {"type": "string", "pattern": r"^([a-z0-9-]+):(\d{1,5})$"},
                ]
            },
        },
        "portsAttributes": {
            "type": "object",
            "patternProperties": {r"(^\d+(-\d+)?$)|(.+)": _PORT_ATTRIBUTES},
            "additionalProperties": False,
        },
        "customizations": {
            "type": "object",
            "properties": {
                "codespaces": {
                    "type": "object",
                    "properties": {
                        "openFiles": {"type": "array", "items": {"type": "string"}},
                        "disableAutomaticConfiguration": {"type": "boolean"},
                    },
                    "additionalProperties": False,
                }
            },
        },
    },
    "unevaluatedProperties": False,
}


def schema_errors(config: Any) -> list[str]:
    """Every way ``config`` breaks the schema, as readable lines (empty when it is valid)."""
    validator = jsonschema.Draft202012Validator(DEVCONTAINER_SCHEMA)
    return sorted(
        f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator.iter_errors(config)
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DEVCONTAINER.read_text())
    return loaded


def test_the_schema_itself_is_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(DEVCONTAINER_SCHEMA)


def test_devcontainer_json_follows_the_schema(config: dict[str, Any]) -> None:
    assert schema_errors(config) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c.update(postAttachComand=c.pop("postAttachCommand")), "postAttachComand"),
        (lambda c: c.update(forwardPorts=["8888"]), "forwardPorts/0"),
        (lambda c: c["portsAttributes"]["8888"].update(onAutoForward="open"), "onAutoForward"),
        (lambda c: c.update(hostRequirements={"cpus": 0}), "hostRequirements/cpus"),
        (lambda c: c.pop("image"), "'image' is a required property"),
        (lambda c: c["customizations"]["codespaces"].update(openFile=["README.md"]), "openFile"),
    ],
    ids=["misspelt-property", "port-as-string", "unknown-action", "no-cpus", "no-image", "misspelt-nested"],
)
def test_the_schema_catches_a_broken_file(config: dict[str, Any], change: Any, expected: str) -> None:
    broken = copy.deepcopy(config)
    change(broken)
    errors = schema_errors(broken)
    assert any(expected in error for error in errors), errors


def test_the_container_runs_the_readmes_command_on_the_forwarded_port(config: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./course.sh lab" in readme
    command = shlex.split(config["postAttachCommand"])
    assert command[:2] == ["./course.sh", "lab"], "Codespaces must open the course as the README does"
    assert config["updateContentCommand"] == "./course.sh setup"  # the setup lab starts with, done ahead
    port = next(int(arg.split("=", 1)[1]) for arg in command if arg.startswith("--port="))
    assert config["forwardPorts"] == [port]
    assert str(port) in config["portsAttributes"]
    # The name JupyterLab accepts requests for is the proxy's name of that same port.
    assert f"--ServerApp.local_hostnames=${{CODESPACE_NAME}}-{port}." in config["postAttachCommand"]
    # The image's Python is the one Binder uses and the course needs (3.11 or newer).
    image_python = re.search(r":(?:\d+-)?(3\.\d+)", config["image"])
    assert image_python is not None
    binder_python = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert binder_python == f"python-{image_python.group(1)}"
    assert tuple(int(n) for n in image_python.group(1).split(".")) >= (3, 11)
    for path in config["customizations"]["codespaces"]["openFiles"]:
        assert (ROOT / path).is_file(), path


def test_jupyterlab_accepts_the_containers_flags_and_answers_through_a_proxy(
    config: dict[str, Any], tmp_path: Path
) -> None:
    """The command's JupyterLab flags, run here with the venv's JupyterLab on a free port: it starts,
    needs no token, answers a request for its root whose Host is the forwarding proxy's (as
    Codespaces sends it) with notebook 00, and refuses any other Host."""
    # Codespaces runs the command in a shell, with its own variables set (a codespace's name and the
    # domain of its forwarded ports): the proxy's Host is <name>-8888.<domain>.
    codespace = {
        "CODESPACE_NAME": "learner-codespace",
        "GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN": "app.github.dev",
    }
    proxy_host = "learner-codespace-8888.app.github.dev"
    expanded = re.sub(r"\$\{(\w+)\}", lambda m: codespace[m.group(1)], config["postAttachCommand"])
    flags = shlex.split(expanded)[2:]
    port = helpers.free_port()
    flags = [f"--port={port}" if flag.startswith("--port=") else flag for flag in flags]
    jupyter = Path(sys.prefix) / "bin" / "jupyter"  # the venv's, as ./course.sh lab runs it
    env = {
        **os.environ,
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    as_root = ["--allow-root"] if os.geteuid() == 0 else []
    log = tmp_path / "jupyterlab.log"
    with log.open("w") as log_file:
        # What ./course.sh lab runs (from the repository's root, opening 00), with the container's flags.
        lab = subprocess.Popen(
            [str(jupyter), "lab", *as_root, "notebooks/00-start-here.ipynb", *flags],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        status = f"http://127.0.0.1:{port}/api/status"
        helpers.wait_for(lambda: _status_code(status) == 200 or lab.poll() is not None, 60, "JupyterLab")
        assert lab.poll() is None, log.read_text()[-2000:]
        # Codespaces opens the forwarded port's root, through its proxy: that must land on notebook 00.
        proxied = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": proxy_host})
        with urllib.request.urlopen(proxied, timeout=10) as response:
            assert response.status == 200
            assert "JupyterLab" in response.read().decode()
            opened = response.url.split("/lab/tree/", 1)[1]
        # Any other name is refused, so a web page cannot reach the server by renaming itself
        # (DNS rebinding) when the port is forwarded to a laptop's localhost.
        rebound = urllib.request.Request(f"http://127.0.0.1:{port}/lab", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=10)
        assert refused.value.code == 403
        # The page opens a notebook the server has: 00 (./course.sh lab serves the notebooks folder).
        contents = f"http://127.0.0.1:{port}/api/contents/{opened}?content=0"
        with urllib.request.urlopen(contents, timeout=10) as response:
            assert json.load(response)["name"] == "00-start-here.ipynb"
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    assert "not recognized" not in log.read_text(), log.read_text()[-2000:]


def _status_code(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except OSError:
        return None
