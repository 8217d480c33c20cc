"""The other clients learners use with the kettle kernel: nbconvert, papermill, jupyter console,
and a frontend that disconnects and comes back.

Each drives the real `kettle` kernelspec (installed in the sandbox by `tests/run-all` or
conftest.py) through the client's own entry point, the way a learner or a CI job runs it:

- `jupyter nbconvert --to notebook --execute` runs notebook 01 to the end, unattended (stdin is
  off, so the InputReader cells fall back to kettle-lab's typist);
- papermill runs notebook 01 with a parameter cell: papermill has no translator for Rust, so the
  test registers one (`RustTranslator`, values become `let name = value;`), as a course using
  papermill would;
- `jupyter console --kernel kettle` in a pseudo-terminal: evaluate, see `Out[1]`, exit with
  Ctrl-D, and the kernel is shut down (its connection file is gone);
- a client that disconnects mid-cell and a new one that connects to the same kernel: the kernel
  kept running, finished the cell and kept its variables.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client import BlockingKernelClient, KernelManager

from conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "01-threads.ipynb"
JUPYTER = Path(sys.executable).with_name("jupyter")

CELL_TIMEOUT = 600  # the first cell compiles the course crates: minutes on a cold cache
RUN_TIMEOUT = 1200  # a whole notebook

needs_notebook = pytest.mark.skipif(not NOTEBOOK.exists(), reason=f"{NOTEBOOK} does not exist yet")


def blank_copy(tmp: Path) -> Path:
    """notebook 01 without outputs, in tmp (clients write next to, or over, their input)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    path = tmp / NOTEBOOK.name
    nbformat.write(nb, path)
    return path


def assert_ran_to_the_end(nb: nbformat.NotebookNode) -> None:
    """Every code cell ran, and only the cells tagged `raises-exception` show an error."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, f"cell {index} did not run:\n{cell.source}"
        errors = [o for o in cell.outputs if o.output_type == "error"]
        expected = "raises-exception" in cell.metadata.get("tags", [])
        assert bool(errors) == expected, (
            f"cell {index}: expected {'an' if expected else 'no'} error, got "
            f"{[(e.ename, e.evalue) for e in errors]}\n{cell.source}"
        )


def text_of(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                parts.append(out.data.get("text/plain", ""))
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# nbconvert
# ---------------------------------------------------------------------------------------------

@needs_notebook
def test_nbconvert_executes_notebook_01_to_the_end(tmp_path):
    source = blank_copy(tmp_path)
    out_dir = tmp_path / "out"
    run = subprocess.run(
        [str(JUPYTER), "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.kernel_name=kettle",
         f"--ExecutePreprocessor.timeout={CELL_TIMEOUT}",
         "--output-dir", str(out_dir), str(source)],
        capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )
    assert run.returncode == 0, run.stderr[-5000:]
    nb = nbformat.read(out_dir / NOTEBOOK.name, as_version=4)
    assert_ran_to_the_end(nb)
    text = text_of(nb)
    # Unattended, the typist answered the InputReader.
    assert "while you typed 'hello world'" in text, text[:3000]
    assert text.count("Got 9 temps") >= 2, text[:3000]
    # The timeline travelled as SVG (and HTML), not only as text.
    svgs = [o for c in nb.cells for o in c.get("outputs", [])
            if o.output_type == "display_data" and "image/svg+xml" in o.data]
    assert svgs, "no display_data with image/svg+xml in the executed notebook"


# ---------------------------------------------------------------------------------------------
# papermill
# ---------------------------------------------------------------------------------------------

def rust_translator():
    """A papermill translator for Rust: parameters become `let` bindings.

    papermill ships translators for Python, R, Julia, Scala, C#, F#, PowerShell, MATLAB and bash;
    any other kernel needs one registered before `execute_notebook` (its `papermill_translators`
    registry is the documented extension point).
    """
    from papermill.translators import Translator

    class RustTranslator(Translator):
        @classmethod
        def translate_escaped_str(cls, str_val):
            # Rust string literals take \\ \" \n \r \t escapes; any other character (UTF-8) is
            # written as is. Python's unicode_escape (papermill's default) produces \xNN,
            # which Rust rejects above 0x7f.
            escaped = (str(str_val).replace("\\", "\\\\").replace('"', '\\"')
                       .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
            return f'"{escaped}"'

        @classmethod
        def translate_none(cls, val):
            return "None::<()>"

        @classmethod
        def translate_float(cls, val):
            text = repr(float(val))
            return text if any(c in text for c in ".eE") else f"{text}.0"  # 1e300, nan excluded

        @classmethod
        def translate_list(cls, val):
            return f"vec![{', '.join(cls.translate(v) for v in val)}]"

        @classmethod
        def comment(cls, cmt_str):
            return f"// {cmt_str}".strip()

        @classmethod
        def assign(cls, name, str_val):
            return f"let {name} = {str_val};"

    return RustTranslator


def test_rust_translator_writes_rust_literals():
    t = rust_translator()
    assert t.translate("tea \"hot\" \\ ☕\n") == '"tea \\"hot\\" \\\\ ☕\\n"'
    assert t.translate(True) == "true"
    assert t.translate(3) == "3"
    assert t.translate(2.0) == "2.0"
    assert t.translate([1, 2]) == "vec![1, 2]"
    assert t.codify({"cups": 3}) == "// Parameters\nlet cups = 3;\n"


@needs_notebook
def test_papermill_runs_notebook_01_with_a_parameter_cell(tmp_path):
    import papermill
    from papermill.exceptions import PapermillExecutionError
    from papermill.translators import papermill_translators

    papermill_translators.register("rust", rust_translator())

    # Notebook 01 has no `parameters` cell of its own: the copy gets one right after the setup
    # cell, and a last cell that prints the values papermill injected.
    source = blank_copy(tmp_path)
    nb = nbformat.read(source, as_version=4)
    setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and ":course" in c.source)
    params = nbformat.v4.new_code_cell('let cups = 1;\nlet who = "the notebook";')
    params.metadata["tags"] = ["parameters"]
    nb.cells.insert(setup + 1, params)
    nb.cells.append(nbformat.v4.new_code_cell('println!("{cups} cups, set by {who}");'))
    nbformat.write(nb, source)
    output = tmp_path / "out.ipynb"

    try:
        papermill.execute_notebook(
            str(source), str(output),
            parameters={"cups": 3, "who": "papermill ☕"},
            kernel_name="kettle", language="rust", cwd=str(tmp_path),
            progress_bar=False, execution_timeout=CELL_TIMEOUT, start_timeout=120,
        )
    except PapermillExecutionError as error:
        # papermill runs every cell (nbclient honours `raises-exception`) and only then reports
        # the first error output, ignoring the tag: that must be one of the compile-error demos.
        ran = nbformat.read(output, as_version=4)
        tagged = [c for c in ran.cells if "raises-exception" in c.metadata.get("tags", [])]
        assert tagged, f"papermill failed on a cell not tagged raises-exception: {error}"
        assert error.source in [c.source for c in tagged], error
    ran = nbformat.read(output, as_version=4)
    injected = [c for c in ran.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1, "papermill did not inject a parameters cell"
    assert 'let who = "papermill ☕";' in injected[0].source, injected[0].source
    code = [c for c in ran.cells
            if c.cell_type == "code" and "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
    assert_ran_to_the_end(nbformat.v4.new_notebook(cells=code))
    assert "3 cups, set by papermill ☕" in text_of(ran)


# ---------------------------------------------------------------------------------------------
# jupyter console
# ---------------------------------------------------------------------------------------------

# prompt_toolkit colours the prompts; match text with escape sequences between any characters.
_ESC = r"(?:\x1b\[[0-9;?]*[A-Za-z])*"


def on_terminal(text: str) -> str:
    return _ESC.join(re.escape(ch) for ch in text)


def test_jupyter_console_evaluates_and_exits_cleanly(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime))
    console = pexpect.spawn(
        str(JUPYTER), ["console", "--kernel", "kettle"], env=env, encoding="utf-8",
        timeout=CELL_TIMEOUT, dimensions=(40, 120),
    )
    log = tmp_path / "console.log"
    console.logfile_read = log.open("w")
    try:
        console.expect(on_terminal("In [1]: "))
        console.send("let cups = 40;\r")
        console.expect(on_terminal("In [2]: "))
        console.send("cups + 2\r")
        console.expect(on_terminal("Out[2]: 42"))
        console.expect(on_terminal("In [3]: "))
        console.send("\x04")  # Ctrl-D, as a learner leaves
        console.expect("Do you really want to exit")
        console.send("y\r")
        console.expect(pexpect.EOF, timeout=60)
        console.close()
        assert console.exitstatus == 0, log.read_text(errors="replace")
    finally:
        if console.isalive():
            console.terminate(force=True)
        console.logfile_read.close()
    # jupyter console deletes the kernel's connection file once the kernel has shut down.
    assert sorted(p.name for p in runtime.glob("kernel-*.json")) == []


# ---------------------------------------------------------------------------------------------
# A frontend that goes away and comes back
# ---------------------------------------------------------------------------------------------

def run_cell(client: BlockingKernelClient, code: str, timeout: float = CELL_TIMEOUT) -> dict:
    """Executes code; returns {'reply': content, 'stdout': text, 'result': text/plain}."""
    stdout, result = [], None

    def on_iopub(msg):
        nonlocal result
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            stdout.append(msg["content"]["text"])
        elif msg["msg_type"] == "execute_result":
            result = msg["content"]["data"].get("text/plain")

    reply = client.execute_interactive(code, timeout=timeout, output_hook=on_iopub)
    return {"reply": reply["content"], "stdout": "".join(stdout), "result": result}


def test_kernel_survives_a_client_that_disconnects_mid_cell_and_reconnects(tmp_path):
    km = KernelManager(kernel_name="kettle")
    km.start_kernel()
    try:
        first = km.blocking_client()
        first.start_channels()
        first.wait_for_ready(timeout=120)
        assert run_cell(first, "let kept = 41;")["reply"]["status"] == "ok"
        # Start a cell that runs for ~3 s, then vanish without waiting for it (a closed tab).
        first.execute(
            'for i in 0..6 { println!("tick {i}"); std::thread::sleep(std::time::Duration::from_millis(500)); }'
        )
        time.sleep(1.5)
        first.stop_channels()
        assert km.is_alive()

        # A new frontend: fresh sockets and a new session id, same connection file.
        second = BlockingKernelClient()
        second.load_connection_info(km.get_connection_info())
        second.start_channels()
        try:
            second.wait_for_ready(timeout=60)
            # The abandoned cell finishes first (the shell queue is in order); then ours runs.
            after = run_cell(second, "kept + 1", timeout=120)
            assert after["reply"]["status"] == "ok", after
            assert after["result"] == "42", after
            assert km.is_alive()
        finally:
            second.stop_channels()
    finally:
        km.shutdown_kernel(now=False)
