"""Shared setup for the Python suites: where the kettle binary is, and a Jupyter sandbox.

`tests/run-all` exports KETTLE_BIN and points every JUPYTER_* / EVCXR_CONFIG_DIR variable at a
temporary directory holding an installed `kettle` kernelspec. When pytest is run by hand without
that, this file builds the same sandbox itself, so no test ever touches the user's Jupyter.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def kettle_bin() -> Path:
    """The kettle binary under test (KETTLE_BIN, else the release build in the shared cache)."""
    if os.environ.get("KETTLE_BIN"):
        return Path(os.environ["KETTLE_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "kettle-target"))
    return Path(target) / "release" / "kettle"


def _ensure_sandbox() -> None:
    # Runs at import, before jupyter_client reads any path, hence not a fixture.
    if os.environ.get("KETTLE_BIN") and os.environ.get("JUPYTER_DATA_DIR"):
        return
    scratch = Path(tempfile.mkdtemp(prefix="kettle-pytest-"))
    for name in ("data", "config", "runtime", "evcxr"):
        (scratch / name).mkdir()
    os.environ.update(
        JUPYTER_DATA_DIR=str(scratch / "data"),
        JUPYTER_PATH=str(scratch / "data"),
        JUPYTER_CONFIG_DIR=str(scratch / "config"),
        JUPYTER_RUNTIME_DIR=str(scratch / "runtime"),
        EVCXR_CONFIG_DIR=str(scratch / "evcxr"),
        KETTLE_BIN=str(kettle_bin()),
    )
    if not kettle_bin().exists():
        pytest.exit(f"kettle binary not found at {kettle_bin()}; run `cargo build --release`", 2)
    subprocess.run([str(kettle_bin()), "install", "--user"], check=True)


_ensure_sandbox()
