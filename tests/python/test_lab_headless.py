"""The README's main command, headless: `kettle lab --no-browser` serves the kettle kernel.

Starts the real binary with KETTLE_VENV pointing at the venv running these tests (so no `.venv/`
is created in the checkout), then talks to JupyterLab only through its public REST and websocket
APIs, like the browser does: kernelspecs, a notebook session, one cell, and a clean shutdown.
The tests share one server and run in file order; the last one stops it.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import websocket

from conftest import kettle_bin

TOKEN = uuid.uuid4().hex
START_TIMEOUT = 120  # a cold JupyterLab start on a busy 2-core machine
CELL_TIMEOUT = 180  # kernel start + evcxr start + first build
STOP_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.runtime_dir = tmp / "runtime"
        self.runtime_dir.mkdir()
        self.spare_dir = tmp / "spares"
        self.log_path = tmp / "lab.log"
        env = dict(os.environ)
        env.update(
            # The venv this test runs in already has JupyterLab: `kettle lab` must reuse it.
            KETTLE_VENV=os.environ.get("KETTLE_VENV", sys.prefix),
            JUPYTER_TOKEN=TOKEN,
            JUPYTER_RUNTIME_DIR=str(self.runtime_dir),
            KETTLE_SPARE_DIR=str(self.spare_dir),
        )
        env.pop("DISPLAY", None)  # headless even on a desktop
        self.notebooks = tmp / "notebooks"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(kettle_bin()), "lab", "--no-browser", "--port", str(self.port),
             "--notebooks", str(self.notebooks)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url(path), headers=self.headers(), timeout=30)

    def post(self, path: str, body: dict) -> requests.Response:
        return requests.post(self.url(path), json=body, headers=self.headers(), timeout=30)

    @staticmethod
    def headers() -> dict:
        return {"Authorization": f"token {TOKEN}"}

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"kettle lab exited early ({self.proc.returncode}):\n{self.output()}")
            try:
                if self.get("/api/status").status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        pytest.fail(f"JupyterLab did not answer within {START_TIMEOUT} s:\n{self.output()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("lab"))
    try:
        lab.wait_ready()
        yield lab
    finally:
        lab.kill()


@pytest.fixture(scope="module")
def session(lab):
    reply = lab.post(
        "/api/sessions",
        {"path": "smoke.ipynb", "name": "smoke.ipynb", "type": "notebook",
         "kernel": {"name": "kettle"}},
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


class KernelSocket:
    """The kernel's websocket with Jupyter Server's JSON message format (no subprotocol)."""

    def __init__(self, lab: Lab, kernel_id: str) -> None:
        self.session = uuid.uuid4().hex
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel_id}/channels"
            f"?session_id={self.session}",
            header=[f"Authorization: token {TOKEN}"],
            timeout=CELL_TIMEOUT,
        )

    def send(self, channel: str, msg_type: str, content: dict) -> str:
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": msg_type, "session": self.session,
                       "username": "test", "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "content": content,
            "channel": channel, "buffers": [],
        }))
        return msg_id

    def replies_to(self, msg_id: str, until, timeout: float) -> list[dict]:
        """Messages whose parent is msg_id, until `until(msg)` holds for one of them."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            seen.append(msg)
            if until(msg):
                return seen
        raise AssertionError(f"timed out; got {[m['msg_type'] for m in seen]}")

    def close(self) -> None:
        self.ws.close()


def is_idle(msg: dict) -> bool:
    return msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"


def test_kernelspecs_list_kettle(lab):
    specs = lab.get("/api/kernelspecs").json()["kernelspecs"]
    assert "kettle" in specs, sorted(specs)
    spec = specs["kettle"]["spec"]
    assert spec["language"] == "rust"
    assert spec["display_name"] == "Rust (kettle)"
    assert Path(spec["argv"][0]).resolve() == kettle_bin().resolve()
    assert "logo-64x64" in specs["kettle"]["resources"]


def test_session_starts_a_kettle_kernel(lab, session):
    assert session["kernel"]["name"] == "kettle"
    kernels = lab.get("/api/kernels").json()
    assert session["kernel"]["id"] in [k["id"] for k in kernels]


def test_kernel_info_over_websocket(lab, session):
    ws = KernelSocket(lab, session["kernel"]["id"])
    try:
        msg_id = ws.send("shell", "kernel_info_request", {})
        msgs = ws.replies_to(msg_id, lambda m: m["msg_type"] == "kernel_info_reply", 60)
        info = msgs[-1]["content"]
        assert info["status"] == "ok"
        assert info["language_info"]["name"] == "rust"
    finally:
        ws.close()


def test_cell_runs_through_jupyterlab(lab, session):
    ws = KernelSocket(lab, session["kernel"]["id"])
    try:
        msg_id = ws.send("shell", "execute_request", {
            "code": "1 + 2", "silent": False, "store_history": True,
            "user_expressions": {}, "allow_stdin": False, "stop_on_error": True,
        })
        msgs = ws.replies_to(msg_id, is_idle, CELL_TIMEOUT)
        # The reply travels on shell and may arrive after idle on iopub: wait for it too.
        if not any(m["msg_type"] == "execute_reply" for m in msgs):
            msgs += ws.replies_to(msg_id, lambda m: m["msg_type"] == "execute_reply", 30)
        reply = next(m for m in msgs if m["msg_type"] == "execute_reply")
        assert reply["content"]["status"] == "ok", reply["content"]
        results = [m for m in msgs if m["msg_type"] == "execute_result"]
        assert [r["content"]["data"]["text/plain"] for r in results] == ["3"]
    finally:
        ws.close()


def is_spare(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1] == b"spare"
    except (OSError, IndexError):
        return False


def spare_pids(lab: Lab) -> list[int]:
    """Running spare kernels: they write their pid into their lock file."""
    pids = []
    for lock in lab.spare_dir.glob("*.lock"):
        for _ in range(10):  # a spare may be rewriting it
            text = lock.read_text().strip()
            if text.isdigit():
                break
            time.sleep(0.05)
        if text.isdigit() and is_spare(int(text)):
            pids.append(int(text))
    return pids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def run_cell(ws: KernelSocket, code: str) -> str:
    """Runs `code`; returns its stdout."""
    msg_id = ws.send("shell", "execute_request", {
        "code": code, "silent": False, "store_history": True,
        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True,
    })
    msgs = ws.replies_to(msg_id, is_idle, CELL_TIMEOUT)
    errors = [m["content"] for m in msgs if m["msg_type"] == "error"]
    assert not errors, errors
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")


def test_a_notebook_opened_later_runs_in_the_spare_kettle_lab_prepared(lab):
    # `kettle lab` starts a spare kernel with the server; a kernel the server starts later
    # hands over to it (its first cell then runs at once) instead of starting evcxr itself.
    deadline = time.monotonic() + START_TIMEOUT
    while not any(lab.spare_dir.glob("*.sock")):
        assert time.monotonic() < deadline, f"no spare kernel appeared:\n{lab.output()}"
        time.sleep(0.2)
    reply = lab.post(
        "/api/sessions",
        {"path": "later.ipynb", "name": "later.ipynb", "type": "notebook",
         "kernel": {"name": "kettle"}},
    )
    assert reply.status_code == 201, reply.text
    later = reply.json()
    ws = KernelSocket(lab, later["kernel"]["id"])
    try:
        out = run_cell(ws, "let parent = std::os::unix::process::parent_id();\n"
                           "println!(\"{}\", std::fs::read_to_string(format!(\"/proc/{parent}/cmdline\"))"
                           ".unwrap().replace('\\0', \" \"));\n"
                           "println!(\"{}\", std::env::current_dir().unwrap().display());")
    finally:
        ws.close()
    command, cwd = out.splitlines()
    assert command.split()[1:] == ["spare"], f"{out}\n{lab.output()}"
    assert Path(cwd).resolve() == lab.notebooks.resolve()


def test_sigint_stops_server_and_kernels(lab, session):
    spares = spare_pids(lab)
    lab.proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal delivers
    try:
        code = lab.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"kettle lab still running {STOP_TIMEOUT} s after SIGINT:\n{lab.output()}")
    assert code == 0, lab.output()
    # Jupyter deletes a kernel's connection file when it shuts that kernel down, and its own
    # server info file when it exits: leftovers mean an unclean stop.
    leftovers = sorted(p.name for p in lab.runtime_dir.glob("*.json"))
    assert leftovers == [], f"{leftovers}\n{lab.output()}"
    with pytest.raises(requests.ConnectionError):
        lab.get("/api/status")
    # Spares end with the server that their kernels belong to.
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in spares) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in spares), f"spares {spares} outlived the server"
