"""What a learner sees: notebook 01 in JupyterLab and Notebook 7, in a real (headless) Chromium.

Protocol tests cannot see a stdin box, an SVG that JupyterLab rendered, lines that appear while a
cell runs, or a toolbar button that really interrupts. This suite starts the README's main command
headless (`kettle lab --no-browser`, from `test_lab_headless.Lab`) on a *copy* of
`notebooks/01-threads.ipynb` with its outputs cleared (JupyterLab autosaves, and the committed
outputs would make every check pass before anything ran), and drives Debian's Chromium through
Playwright the way a learner uses the mouse and keyboard:

 1. open the notebook: the kettle kernel is selected and started, and has added the crates the
    notebook declares before its setup cell runs;
 2. run the InputReader cell and type a line into JupyterLab's stdin box;
 3. run the TempGetter cells: the timeline is an inline `<svg>` with one lane per thread;
 4. a cell printing from threads for seconds: lines appear while the cell is still running;
 5. `loop {}` stopped by the toolbar's interrupt button; the kernel is idle and usable;
 6. Kernel menu > Restart Kernel, rerun: works;
 7. close the browser tab, open it again: same kernel, variables still there;
 8. the same notebook in Notebook 7 (`/tree`, then the notebook): runs a cell.

Each step saves a screenshot (also when it fails) into the folder printed at the start:
`$KETTLE_ARTIFACTS/browser` if set, else `/tmp/kettle-browser-artifacts/<timestamp>`.

Playwright cannot download a browser here, so the tests use the system Chromium
(`$KETTLE_CHROMIUM`, default `/usr/bin/chromium`, installed by `tests/setup-browser`) and skip,
loudly, when it is missing. The steps share one server, browser and notebook and run in file
order, like a learner working down the notebook.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from test_lab_headless import TOKEN, Lab

CHROMIUM = Path(os.environ.get("KETTLE_CHROMIUM", "/usr/bin/chromium"))
NOTEBOOK = ROOT / "notebooks" / "01-threads.ipynb"
NAME = NOTEBOOK.name

# As root Chromium needs --no-sandbox; without the background-networking flags it opens
# connections of its own (updates, sync, field trials) that this sandboxed network refuses
# many at a time, which slows every page load.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]

SERVED: dict[str, Path] = {}  # the copy of notebook 01 that the server serves

SETUP_TIMEOUT = 600  # the `:course` cell compiles the helper crates: minutes on a cold cache
CELL_TIMEOUT = 120  # any other cell: a couple of seconds to compile, at most ~10 s to run
UI_TIMEOUT = 30_000  # ms, for Playwright's own waits on the page

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (tests/python/requirements.txt)"
)
expect = playwright_api.expect

if not CHROMIUM.exists():
    pytest.skip(
        f"\n{'#' * 78}\n# BROWSER TESTS SKIPPED: no Chromium at {CHROMIUM}.\n"
        "# Install it with tests/setup-browser as root (apt-get install chromium).\n"
        f"{'#' * 78}",
        allow_module_level=True,
    )
if not NOTEBOOK.exists():
    pytest.skip(f"{NOTEBOOK} does not exist yet", allow_module_level=True)


# ---------------------------------------------------------------------------------------------
# Fixtures: artifacts folder, server, browser, the notebook page
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def artifacts(request) -> Path:
    base = os.environ.get("KETTLE_ARTIFACTS")
    folder = (Path(base) / "browser" if base else
              Path("/tmp/kettle-browser-artifacts") / time.strftime("%Y%m%d-%H%M%S"))
    folder.mkdir(parents=True, exist_ok=True)
    # Printed through the terminal reporter, so it shows even when the tests pass.
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    line = f"browser test screenshots: {folder}"
    reporter.write_line(line) if reporter else print(line)
    return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    # The folder `kettle lab --notebooks` serves: a copy of notebook 01 without outputs.
    notebooks = tmp / "notebooks"
    notebooks.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(nb, notebooks / NAME)
    SERVED["path"] = notebooks / NAME
    # JupyterLab's settings and workspaces in the sandbox too, with its "news" prompt turned off:
    # the prompt would cover the bottom of every screenshot.
    settings = tmp / "lab-settings"
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    saved = {k: os.environ.get(k) for k in ("JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR")}
    os.environ["JUPYTERLAB_SETTINGS_DIR"] = str(settings)
    os.environ["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp / "lab-workspaces")
    try:
        lab = Lab(tmp)  # starts `kettle lab --no-browser --port <free> --notebooks tmp/notebooks`
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    try:
        lab.wait_ready()
        yield lab
    finally:
        lab.kill()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Shots:
    """Numbered screenshots in the artifacts folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.n = 0

    def take(self, page, name: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        page.screenshot(path=str(path))
        return path


@pytest.fixture(scope="module")
def shots(artifacts) -> Shots:
    return Shots(artifacts)


class NotebookPage:
    """One notebook open in a browser tab (JupyterLab or Notebook 7: both use the same widgets)."""

    def __init__(self, lab: Lab, browser, url_path: str) -> None:
        self.lab = lab
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(UI_TIMEOUT)
        self.page.goto(lab.url(f"{url_path}?token={TOKEN}"))
        self.cells.first.wait_for()
        # Before the session exists the indicator says idle too (for "No Kernel"): wait for the
        # kernel's name first.
        expect(self.page.locator(".jp-KernelName").first).to_have_text(
            "Rust (kettle)", timeout=CELL_TIMEOUT * 1000
        )
        self.wait_kernel_idle(SETUP_TIMEOUT)
        self.wait_all_cells_shown()

    def wait_all_cells_shown(self) -> None:
        # A long notebook's cells are added to the page in batches after the first ones show:
        # counting (to append a cell) before that finishes would count too few.
        count, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + UI_TIMEOUT / 1000
        while time.monotonic() < deadline:
            now = self.cells.count()
            if now != count:
                count, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since > 1.0:
                return
            time.sleep(0.1)
        raise AssertionError(f"the number of cells shown kept changing ({count})")

    @property
    def cells(self):
        return self.page.locator(".jp-Notebook .jp-Cell")

    def cell(self, index: int):
        return self.cells.nth(index)

    def status(self) -> str:
        return self.page.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute("data-status") or ""

    def wait_kernel_idle(self, timeout: float) -> None:
        expect(self.page.locator(".jp-Notebook-ExecutionIndicator").first).to_have_attribute(
            "data-status", "idle", timeout=timeout * 1000
        )

    def select(self, index: int) -> None:
        """Selects a cell in command mode, as a click in its left margin does."""
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputPrompt").first.click()
        self.page.keyboard.press("Escape")

    def run(self, index: int, timeout: float = CELL_TIMEOUT, wait: bool = True):
        """Shift+Enter on cell `index`; with `wait`, returns once its prompt shows a number."""
        cell = self.cell(index)
        prompt = cell.locator(".jp-InputPrompt").first
        before = prompt.inner_text()
        self.select(index)
        self.page.keyboard.press("Shift+Enter")
        if wait:
            self.wait_done(cell, before, timeout)
        return cell

    @staticmethod
    def wait_done(cell, before: str, timeout: float) -> None:
        # `[*]` while queued or running, `[n]` after. A rerun after a restart can end with the
        # same number as before, so seeing `[*]` also counts as "it ran".
        prompt = cell.locator(".jp-InputPrompt").first
        seen_star = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = prompt.inner_text()
            seen_star |= "*" in text
            if re.search(r"\[\d+\]", text) and (seen_star or text != before):
                return
            time.sleep(0.05)
        raise AssertionError(f"cell still running after {timeout} s (prompt {prompt.inner_text()!r})")

    def append(self, code: str) -> int:
        """Types code into a new cell at the end and returns its index.

        Shift+Enter on the last cell leaves an empty cell below it: that one is reused;
        otherwise the last cell is selected and `b` inserts one below.
        """
        last = self.cells.count() - 1
        tail = self.cell(last)
        empty = ("jp-CodeCell" in (tail.get_attribute("class") or "")
                 and tail.locator(".cm-content").first.inner_text().strip() == "")
        if not empty:
            self.select(last)
            self.page.keyboard.press("b")
            last += 1
            expect(self.cells).to_have_count(last + 1)
        else:
            self.select(last)
        self.page.keyboard.press("Enter")  # edit mode
        # insert_text types without key events, so the editor does not auto-close brackets.
        self.page.keyboard.insert_text(code)
        self.page.keyboard.press("Escape")
        return last

    def output_text(self, index: int) -> str:
        return self.cell(index).locator(".jp-OutputArea").first.inner_text()

    def close(self) -> None:
        self.context.close()


def cell_index(snippet: str) -> int:
    """Index (among all cells, as the page shows them) of the first code cell containing snippet.

    Cells are found by what they do, not by position, so prose added to the notebook does not
    break the test; the copy the server serves is read, in case the original changes meanwhile.
    """
    nb = nbformat.read(SERVED["path"], as_version=4)
    found = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and snippet in c.source]
    assert found, f"notebook 01 has no code cell containing {snippet!r}"
    return found[0]


@pytest.fixture(scope="module")
def notebook(lab, browser, shots):
    nb = NotebookPage(lab, browser, f"/lab/tree/{NAME}")
    holder = {"page": nb}
    yield holder
    holder["page"].close()


@pytest.fixture
def page(notebook, shots, request):
    """The notebook page for one step; on failure a screenshot named after the test is saved."""
    failed_before = request.session.testsfailed
    yield notebook["page"]
    # Teardown runs after the test body's report, so a failure is already counted here.
    if request.session.testsfailed > failed_before:
        shots.take(notebook["page"].page, f"FAILED-{request.node.name}")


def session_kernel(lab: Lab) -> dict:
    sessions = [s for s in lab.get("/api/sessions").json() if s["path"].endswith(NAME)]
    assert len(sessions) == 1, sessions
    return sessions[0]["kernel"]


# ---------------------------------------------------------------------------------------------
# The steps, in the order a learner takes them
# ---------------------------------------------------------------------------------------------

def test_notebook_opens_with_the_kettle_kernel_started(lab, page, shots):
    kernel = session_kernel(lab)
    assert kernel["name"] == "kettle"
    assert page.status() == "idle"
    shots.take(page.page, "opened-kettle-kernel-idle")


def test_the_notebooks_crates_are_there_before_its_setup_cell_runs(page, shots):
    # Jupyter Server named the notebook to the kernel (JPY_SESSION_NAME), which read its
    # `:course` line and added the course crates ahead (kernel/src/engine/ahead.rs).
    index = page.append("kettle_display::interrupted()")
    page.run(index, timeout=SETUP_TIMEOUT)
    assert "false" in page.output_text(index), page.output_text(index)
    shots.take(page.page, "course-crates-read-ahead")


def test_input_reader_reads_a_line_typed_into_the_stdin_box(page, shots):
    page.run(cell_index(":course"), timeout=SETUP_TIMEOUT)
    page.run(cell_index("struct InputReader"))
    index = cell_index("InputReader::default().start(keyboard())")
    cell = page.run(index, wait=False)
    stdin = cell.locator("input.jp-Stdin-input")
    expect(stdin).to_be_visible(timeout=CELL_TIMEOUT * 1000)
    stdin.type("tea from the browser")
    shots.take(page.page, "stdin-box-typed")
    stdin.press("Enter")
    page.wait_done(cell, "[*]:", CELL_TIMEOUT)
    out = page.output_text(index)
    assert "while you typed 'tea from the browser'" in out, out
    assert "calculated squares up to" in out, out
    shots.take(page.page, "stdin-line-read")


def test_timeline_is_rendered_as_an_inline_svg_with_lanes(page, shots):
    page.run(cell_index("struct TempGetter"))
    page.run(cell_index('.lane("main thread")'))
    index = cell_index("timeline.show()")
    page.run(index)
    svg = page.cell(index).locator(".jp-OutputArea-output svg").first
    expect(svg).to_be_visible()
    # One bar per request: nine threaded ones plus nine on the main thread's lane.
    bars = svg.locator("rect")
    assert bars.count() >= 18, bars.count()
    labels = [t.strip() for t in svg.locator("text").all_text_contents()]
    assert "main thread" in labels, labels
    # Rendered, not printed: the ASCII fallback chart must not be what the page shows.
    assert "<svg" not in page.output_text(index)
    svg.scroll_into_view_if_needed()
    shots.take(page.page, "timeline-svg")


THREADS_PRINTING = """\
// Two threads print a line every 400 ms for about 3 s.
let workers: Vec<_> = (0..2)
    .map(|w| {
        std::thread::spawn(move || {
            for i in 0..8 {
                println!("worker {w} says tick {i}");
                std::thread::sleep(std::time::Duration::from_millis(400));
            }
        })
    })
    .collect();
for w in workers {
    w.join().unwrap();
}
println!("all workers done");
"""


def test_lines_printed_by_threads_appear_while_the_cell_runs(page, shots):
    index = page.append(THREADS_PRINTING)
    cell = page.run(index, wait=False)
    prompt = cell.locator(".jp-InputPrompt").first
    # Wait for the first line, then check the cell has not finished: output is streamed.
    deadline = time.monotonic() + CELL_TIMEOUT
    while "tick" not in page.output_text(index):
        assert time.monotonic() < deadline, "no line from the threads"
        time.sleep(0.05)
    early = page.output_text(index)
    still_running = "*" in prompt.inner_text()
    shots.take(page.page, "threads-printing-while-running")
    assert still_running, f"the cell had already finished when its first line showed: {early!r}"
    assert "all workers done" not in early
    page.wait_done(cell, "[*]:", CELL_TIMEOUT)
    out = page.output_text(index)
    assert out.count("says tick") == 16, out
    assert out.rstrip().endswith("all workers done"), out
    assert early.count("says tick") < 16


def test_toolbar_interrupt_stops_an_endless_loop(lab, page, shots):
    kernel_before = session_kernel(lab)["id"]
    index = page.append("loop {}")
    cell = page.run(index, wait=False)
    # Give it time to compile and start spinning, then check it really is running.
    time.sleep(4)
    assert "*" in cell.locator(".jp-InputPrompt").first.inner_text()
    assert page.status() == "busy"
    shots.take(page.page, "loop-running")
    page.page.locator('.jp-NotebookPanel-toolbar [data-jp-item-name="interrupt"] button').first.click()
    page.wait_done(cell, "[*]:", 30)
    page.wait_kernel_idle(30)
    shots.take(page.page, "loop-interrupted")
    # Same kernel, still usable.
    assert session_kernel(lab)["id"] == kernel_before
    check = page.append("6 * 7")
    page.run(check)
    assert "42" in page.output_text(check)


def test_restart_from_the_kernel_menu_then_rerun(page, shots):
    p = page.page
    p.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
    p.locator(".lm-Menu-item", has_text=re.compile(r"^Restart Kernel…")).first.click()
    p.locator(".jp-Dialog .jp-mod-accept").click()
    page.wait_kernel_idle(CELL_TIMEOUT)
    shots.take(p, "restarted")
    setup = cell_index(":course")
    page.run(setup, timeout=SETUP_TIMEOUT)
    assert "error" not in page.output_text(setup).lower()
    # A new kernel process counts from 1 again.
    assert page.cell(setup).locator(".jp-InputPrompt").first.inner_text().strip() == "[1]:"
    index = page.append("let kept = 41;\nkept + 1")
    page.run(index)
    assert "42" in page.output_text(index)
    shots.take(p, "rerun-after-restart")


def test_closing_and_reopening_the_tab_keeps_the_kernel(lab, browser, notebook, shots):
    kernel_before = session_kernel(lab)["id"]
    notebook["page"].close()
    time.sleep(2)  # the server notices the websocket closed
    assert session_kernel(lab)["id"] == kernel_before
    notebook["page"] = page = NotebookPage(lab, browser, f"/lab/tree/{NAME}")
    assert session_kernel(lab)["id"] == kernel_before
    index = page.append("kept * 2")
    page.run(index)
    assert "82" in page.output_text(index), page.output_text(index)
    shots.take(page.page, "reopened-same-kernel")


def test_notebook7_runs_a_cell(lab, browser, shots):
    # Notebook 7 is a server extension of the same Jupyter server `kettle lab` starts.
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        tree = context.new_page()
        tree.set_default_timeout(UI_TIMEOUT)
        tree.goto(lab.url(f"/tree?token={TOKEN}"))
        expect(tree.get_by_text(NAME).first).to_be_visible()
        shots.take(tree, "notebook7-tree")
    finally:
        context.close()
    page = NotebookPage(lab, browser, f"/notebooks/{NAME}")
    try:
        index = page.append('println!("hello from Notebook 7, kept = {kept}");')
        page.run(index)
        out = page.output_text(index)
        page.cell(index).scroll_into_view_if_needed()
        shots.take(page.page, "notebook7-cell-ran")
        assert "hello from Notebook 7, kept = 41" in out, out
    finally:
        page.close()


def test_artifacts_folder_holds_the_screenshots(artifacts):
    names = sorted(p.name for p in artifacts.glob("*.png"))
    assert len([n for n in names if not n.startswith("FAILED")]) >= 12, names
