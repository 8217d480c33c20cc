"""The course notebooks, executed end to end through the kettle kernel with nbclient.

Every `notebooks/*.ipynb` runs top to bottom (stdin disabled, as in CI: the InputReader cells
fall back to kettle-lab's typist) with `allow_errors=False`, so any cell that fails is a test
failure, except cells tagged `raises-exception` (the compile-error demos), whose errors are then
checked for the right rustc codes. Notebook 01's outputs are read for what the notebook claims:
both "Got 9 temps" lines, threads at least 4x faster than sequential, the stdin cell completed.

The kernels run with cargo's network cut off (a proxy on a closed port): no cell may need the
internet once the setup command has filled the cargo cache (tests/run-all runs `kettle warm`
first, as the README's setup does).

A notebook built from a source (`notebooks/src/<name>.md`) is also checked to be up to date with
it, so the tested Rust in kettle-lab and the committed cells cannot drift apart.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BUILDER = ROOT / "notebooks" / "tools" / "build_notebook.py"

# The first cell compiles the course crates (~10 s warm, a few minutes with a cold cargo cache
# on a busy 2-core machine); later cells compile in seconds and run for at most ~10 s.
CELL_TIMEOUT = 600

# Any request cargo makes to crates.io fails at once, so a cell that needed the network fails.
NO_NETWORK = {"CARGO_HTTP_PROXY": "http://127.0.0.1:9", "CARGO_NET_RETRY": "0"}

_executed: dict[Path, nbformat.NotebookNode] = {}


def executed(path: Path) -> nbformat.NotebookNode:
    """`path` run through the kernel once per session (a copy: the committed file is untouched)."""
    if path not in _executed:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = []
        NotebookClient(
            nb,
            kernel_name="kettle",
            timeout=CELL_TIMEOUT,
            allow_errors=False,  # tagged raises-exception cells are still allowed to fail
            resources={"metadata": {"path": str(path.parent)}},
        ).execute(env={**os.environ, **NO_NETWORK})
        _executed[path] = nb
    return _executed[path]


def text_of(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell printed or showed as text, in order."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}\n" + "\n".join(out.traceback))
    return "".join(parts)


def errors_of(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def cell_containing(nb: nbformat.NotebookNode, snippet: str) -> nbformat.NotebookNode:
    found = [c for c in code_cells(nb) if snippet in c.source]
    assert len(found) == 1, f"expected one code cell containing {snippet!r}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_matches_its_source(path: Path) -> None:
    source = ROOT / "notebooks" / "src" / f"{path.stem}.md"
    if not source.exists():
        pytest.skip("no source: the .ipynb is edited directly")
    check = subprocess.run(
        [sys.executable, str(BUILDER), str(source), "--out", str(path), "--check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_only_tagged_cells_fail(path: Path) -> None:
    nb = executed(path)
    for i, cell in enumerate(code_cells(nb)):
        tagged = "raises-exception" in cell.metadata.get("tags", [])
        errors = errors_of(cell)
        if tagged:
            assert errors, f"code cell {i} is tagged raises-exception but ran cleanly:\n{cell.source}"
        else:
            assert not errors, f"code cell {i} failed:\n{text_of(cell)}"


NB01 = ROOT / "notebooks" / "01-threads.ipynb"
needs_nb01 = pytest.mark.skipif(not NB01.exists(), reason="notebooks/01-threads.ipynb missing")


@needs_nb01
def test_01_temp_getter_threads_beat_sequential() -> None:
    nb = executed(NB01)
    c4 = text_of(cell_containing(nb, "struct TempGetter"))
    c5 = text_of(cell_containing(nb, 'lane("main thread")'))
    for out in (c4, c5):
        assert "it is 3°C in Edmonton" in out, out
        assert len(re.findall(r"^it is -?\d+°C in \w+$", out, re.M)) == 9, out
    got = re.compile(r"^Got 9 temps in ([0-9.]+) seconds$", re.M)
    threaded = float(got.search(c4).group(1))
    sequential = float(got.search(c5).group(1))
    assert threaded * 4 <= sequential, f"threads {threaded} s vs sequential {sequential} s"


@needs_nb01
def test_01_compile_error_cells_show_rustc_codes() -> None:
    nb = executed(NB01)
    tagged = [c for c in code_cells(nb) if "raises-exception" in c.metadata.get("tags", [])]
    codes = []
    for cell in tagged:
        errors = errors_of(cell)
        assert errors, cell.source
        codes.append(re.search(r"E0\d{3}", errors[0].evalue + "".join(errors[0].traceback)).group(0))
    assert codes == ["E0373", "E0499", "E0277"]


@needs_nb01
def test_01_stdin_cells_complete_unattended() -> None:
    nb = executed(NB01)
    c2 = text_of(cell_containing(nb, "is_finished()"))
    c3 = text_of(cell_containing(nb, "|| false"))
    squares = re.search(r"calculated squares up to (\d+) \* \1 = (\d+)", c2)
    assert squares and int(squares.group(1)) > 1, c2
    assert "while you typed 'hello world'" in c2, c2
    assert "calculated squares up to 1 * 1 = 1" in c3, c3
    assert "while you typed 'hello world'" in c3, c3


@needs_nb01
def test_01_no_gil_compare_reports_a_speedup() -> None:
    nb = executed(NB01)
    out = text_of(cell_containing(nb, '.variant("2 processes"'))
    # Only that the comparison ran and reported: CPU speed-ups on a shared CI machine are noise
    # (kettle-lab's x5 test checks that two threads beat one, on best runs).
    assert re.search(r"2 threads: [0-9.]+× the speed of 1 thread", out), out
    assert re.search(r"^2 processes\s", out, re.M), out


# --- Notebooks 02 (Multiprocessing) and 03 (Futures) -------------------------------------------
# Results (pids, factors, matches, sorted paths) are checked exactly; timings only as relations
# between best runs, with room for a shared, noisy 2-core machine.

NB02 = ROOT / "notebooks" / "02-multiprocessing.ipynb"
NB03 = ROOT / "notebooks" / "03-futures.ipynb"
needs_nb02 = pytest.mark.skipif(not NB02.exists(), reason="notebooks/02-multiprocessing.ipynb missing")
needs_nb03 = pytest.mark.skipif(not NB03.exists(), reason="notebooks/03-futures.ipynb missing")

_UNITS = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0}


def compare_row(out: str, variant: str) -> tuple[float, float]:
    """(median, min) in seconds of one variant row of a kettle_timing Compare table."""
    num = r"([0-9.]+) (ns|µs|ms|s)"
    m = re.search(rf"^{re.escape(variant)}\s+{num}\s+{num} – {num}", out, re.M)
    assert m, f"no Compare row {variant!r} in:\n{out}"
    g = m.groups()
    return float(g[0]) * _UNITS[g[1]], float(g[2]) * _UNITS[g[3]]


@needs_nb02
def test_02_much_cpu_processes_have_own_pids_and_threads_share_one() -> None:
    nb = executed(NB02)
    c6 = text_of(cell_containing(nb, "fn much_cpu_processes"))
    c7 = text_of(cell_containing(nb, "fn much_cpu_threads"))
    pids6 = re.findall(r"^(\d+)$", c6, re.M)
    pids7 = re.findall(r"^(\d+)$", c7, re.M)
    assert len(pids6) >= 2 and len(set(pids6)) == len(pids6), c6
    assert len(pids7) == len(pids6) and len(set(pids7)) == 1, c7
    assert not set(pids6) & set(pids7), "the children are not the kernel's process"
    for out in (c6, c7):
        assert re.search(r"^work took [0-9.]+ seconds$", out, re.M), out


@needs_nb02
def test_02_threads_are_about_as_fast_as_processes() -> None:
    nb = executed(NB02)
    out = text_of(cell_containing(nb, "threads take {:.2}×"))
    cpus = re.search(r"^(\d+) processes\s", out, re.M).group(1)
    _, processes = compare_row(out, f"{cpus} processes")
    _, threads = compare_row(out, f"{cpus} threads")
    # The target is "within 10 %"; on a shared machine, best runs within 50 %.
    assert threads <= processes * 1.5, out
    # 200 M rounds per worker: Python's processes took 3.18 s here. Far below, whatever the load.
    assert processes < 3.18 / 4, out


@needs_nb02
def test_02_pool_map_factors_multiply_back_in_input_order() -> None:
    nb = executed(NB02)
    out = text_of(cell_containing(nb, "const TO_FACTOR"))
    rows = re.findall(r"^The factors of (\d+) are \[([0-9, ]+)\]$", out, re.M)
    assert [int(v) for v, _ in rows][:3] == [9117031, 38298625, 4335027], out
    assert len(rows) == 20, out
    for value, factors in rows:
        product = 1
        for f in factors.split(", "):
            product *= int(f)
        assert product == int(value), (value, factors)
    dominates = text_of(cell_containing(nb, "Which number costs what"))
    share = re.search(r"33348085 alone: [0-9.]+ s \((\d+)% of the work\)", dominates)
    assert share and int(share.group(1)) >= 60, dominates


@needs_nb02
def test_02_pool_pays_off_when_work_is_spread() -> None:
    nb = executed(NB02)
    out = text_of(cell_containing(nb, "fn factor_in_processes"))
    _, sequential = compare_row(out, "sequential")
    _, pooled = compare_row(out, "rayon pool")
    # The issue asks for 1.7× on 2 idle cores; here only that the pool's best run is not slower.
    assert pooled <= sequential * 1.05, out
    async_out = text_of(cell_containing(nb, "pool.map_async"))
    assert "got 20 results, the first [7, 11, 167, 709]" in async_out, async_out
    assert "apply_async: ready true, Ok([5, 6669617])" in async_out, async_out
    assert "after close + join: 8 of 8 queued jobs done" in async_out, async_out
    ran, cancelled = map(int, re.search(r"after terminate: (\d+) jobs ran, (\d+) were cancelled", async_out).groups())
    assert ran + cancelled == 200 and cancelled > 0, async_out


@needs_nb02
def test_02_search_engine_finds_every_def_both_ways() -> None:
    nb = executed(NB02)
    threads = text_of(cell_containing(nb, 'q.send(Some("def"'))
    assert "def handler_" in threads and re.search(r"^\.\.\. 20000 matching lines", threads, re.M), threads
    processes = text_of(cell_containing(nb, "fn search_in_processes"))
    assert re.search(r"^20000 matching lines in [0-9.]+ seconds", processes, re.M), processes
    out = text_of(cell_containing(nb, "fn search_in_threads"))
    compare_row(out, re.search(r"^(\d+ threads, channels)", out, re.M).group(1))
    compare_row(out, re.search(r"^(\d+ processes, pipes)", out, re.M).group(1))


@needs_nb03
def test_03_find_files_output_is_sorted_counted_and_skips_the_traps() -> None:
    nb = executed(NB03)
    out = text_of(cell_containing(nb, "ThreadPool::new(10)"))
    count = int(re.search(r'^\.\.\. (\d+) paths containing "\.py" in [0-9.]+ seconds \(re-queued: 0\)$', out, re.M).group(1))
    assert count in (6220, 6221), out  # + locked/secret.py when run as root
    shown = [line for line in out.splitlines() if re.fullmatch(r"[\w/]+\.pyc?", line)]
    assert len(shown) == 5 and shown == sorted(shown), out
    assert shown[0] == "d0/d0/d0/d0/f0.py", out
    assert re.search(r"^skipped: <tree>/latin1: .*not UTF-8", out, re.M), out
    alternatives = text_of(cell_containing(nb, "fn find_rayon"))
    lines = re.findall(r"^\s*([\w ]+): (\d+) paths, (\d+) skipped, same as above: (\w+)$", alternatives, re.M)
    assert [name for name, *_ in lines] == ["sequential", "pool of 10", "rayon scope", "tokio spawn_blocking"], alternatives
    assert all(int(n) == count and same == "true" for _, n, _, same in lines), alternatives


@needs_nb03
def test_03_pool_is_no_slower_than_a_sequential_walk() -> None:
    nb = executed(NB03)
    out = text_of(cell_containing(nb, '.variant("pool of 10 + futures"'))
    _, sequential = compare_row(out, "sequential")
    _, pooled = compare_row(out, "pool of 10 + futures")
    # Python's pool was 2.4× slower; ours within noise of the loop (best runs, 1.5× slack).
    assert pooled <= sequential * 1.5, out


# --- Notebooks 04 (AsyncIO), 05 (case study) and 06 (exercises) ---------------------------------
# Answers (DNS addresses, sorted lists, round trips) exactly; timings only as tolerant relations.

NB04 = ROOT / "notebooks" / "04-asyncio.ipynb"
NB05 = ROOT / "notebooks" / "05-case-study.ipynb"
NB06 = ROOT / "notebooks" / "06-exercises.ipynb"
needs_nb04 = pytest.mark.skipif(not NB04.exists(), reason="notebooks/04-asyncio.ipynb missing")
needs_nb05 = pytest.mark.skipif(not NB05.exists(), reason="notebooks/05-case-study.ipynb missing")
needs_nb06 = pytest.mark.skipif(not NB06.exists(), reason="notebooks/06-exercises.ipynb missing")


@needs_nb04
def test_04_five_sleepers_wake_in_pythons_order() -> None:
    nb = executed(NB04)
    out = text_of(cell_containing(nb, "async fn five_sleepers"))
    events = [line for line in out.splitlines() if re.fullmatch(r"\d awakens|Waking and waiting for five tasks", line)]
    assert events == ["0 awakens", "3 awakens", "Waking and waiting for five tasks", "4 awakens", "2 awakens", "1 awakens"], out
    took = float(re.search(r"^\(took ([0-9.]+) s; Python: 4.240 s\)$", out, re.M).group(1))
    assert 4.2 <= took < 4.6, out
    assert any("image/svg+xml" in o.get("data", {}) for o in cell_containing(nb, "async fn five_sleepers").outputs)


@needs_nb04
def test_04_blocking_sleep_stalls_the_loop() -> None:
    nb = executed(NB04)
    out = text_of(cell_containing(nb, "fn three_waits"))
    took = {how: float(t) for how, t in re.findall(r"with (\S+)\s+took ([0-9.]+) s", out)}
    assert took["std::thread::sleep"] >= 1.45, out
    assert took["tokio::time::sleep"] < 0.9 and took["spawn_blocking"] < 0.9, out


@needs_nb04
def test_04_dns_answers_carry_the_right_ips() -> None:
    nb = executed(NB04)
    out = text_of(cell_containing(nb, "async fn nslookup"))
    answers = dict(re.findall(r"^  nslookup (\S+)\s+-> (\S+)$", out, re.M))
    assert answers == {
        "facebook.com": "173.252.120.6",
        "yougov.com": "213.52.133.246",
        "wipo.int": "193.5.93.80",
        "dataquest.io": "104.20.20.199",
        "example.org": "127.0.0.1",
    }, out
    assert "DNS Server stopped after 5 requests" in out, out
    assert len(re.findall(r"^Sending IP \S+ for \S+\. to 127\.0\.0\.1:\d+$", out, re.M)) == 5, out


@needs_nb04
def test_04_sort_service_sorts_and_serves_clients_concurrently() -> None:
    nb = executed(NB04)
    out = text_of(cell_containing(nb, "async fn remote_sort"))
    shown = re.findall(r"\[([0-9, ]+)\] … \[([0-9, ]+)\] \((\d+) numbers, sorted: (\w+)\)", out)
    assert len(shown) == 5, out
    for head, tail, n, flag in shown:
        nums = [int(x) for x in head.split(", ")] + [int(x) for x in tail.split(", ")]
        assert nums == sorted(nums) and n == "10000" and flag == "true", out
    one = float(re.search(r"^1 client: round trip ([0-9.]+) s", out, re.M).group(1))
    four = float(re.search(r"^4 clients at once: ([0-9.]+) s", out, re.M).group(1))
    assert one < 9.07 / 50, out  # the target: at least 50× Python's one client
    assert four < one * 6, out  # CPU-bound on 2 cores: about 2×; generous for a busy machine
    processes = text_of(cell_containing(nb, "sorted in a worker process"))
    assert "sorted: true" in processes, processes
    x8 = text_of(cell_containing(nb, "tokio::select! {\n    sorted"))
    assert re.search(r"^gave up after 0\.1\d\d s", x8, re.M), x8
    assert re.search(r"^(threads|processes) answered first: .*sorted: true\)$", x8, re.M), x8
    stop = text_of(cell_containing(nb, "service.stop().await"))
    assert "Sort Services stopped after 7 and 2 connections" in stop, stop


@needs_nb05
def test_05_compression_round_trips_and_executors_agree() -> None:
    nb = executed(NB05)
    small = text_of(cell_containing(nb, "SampleImages::small()"))
    sizes = {name: (int(bmp), int(rle)) for name, bmp, rle in re.findall(r"^(\w+)\.bmp\s+(\d+)\s+(\d+)\s", small, re.M)}
    assert set(sizes) == {"stripes", "checkerboard", "text", "noise"}, small
    assert sizes["noise"][1] > sizes["noise"][0] and sizes["text"][1] < sizes["text"][0] / 2, small
    page = text_of(cell_containing(nb, "SampleImages::pages(1)"))
    assert "all four executors wrote the same bytes: true" in page, page
    c23 = text_of(cell_containing(nb, "fn decompress"))
    assert c23.count("round trip equal: true") == 5 and "false" not in c23, c23
    pngs = [o for o in cell_containing(nb, "fn decompress").outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 2 and pngs[0].data["image/png"] == pngs[1].data["image/png"]


@needs_nb05
def test_05_per_row_parallelism_and_the_2x2_table() -> None:
    nb = executed(NB05)
    page = text_of(cell_containing(nb, "SampleImages::pages(1)"))
    _, sequential = compare_row(page, "Sequential")
    _, rayon = compare_row(page, "Rayon")
    # Python's per-row executors lost to its loop; ours must not (best runs, slack for noise).
    assert rayon <= sequential * 1.1, page
    total = float(re.search(r"compress_image\(page_1\.bmp\): \d+ bytes in ([0-9.]+) s", page).group(1))
    assert total < 3.42 / 5, page
    cell = cell_containing(nb, "fn compress_dir")
    table = "".join(o.data.get("text/markdown", "") for o in cell.outputs if "data" in o)
    assert "Python 7.14 s, book 42 s" in table and "Python 12.40 s, book 64 s" in table, table
    cells = [float(x) for x in re.findall(r"\| ([0-9.]+) s \(Python", table)]
    assert len(cells) == 5 and max(cells[:4]) < 6.47, table


@needs_nb06
def test_06_exercise_solutions_run_and_are_collapsed() -> None:
    nb = executed(NB06)
    hidden = [c for c in code_cells(nb) if c.metadata.get("jupyter", {}).get("source_hidden")]
    assert len(hidden) == 3
    http = text_of(cell_containing(nb, "async fn serve"))
    assert "HTTP/1.1 200 OK" in http and "<h1>Hello from tokio</h1>" in http and "HTTP/1.1 404" in http, http
    race = text_of(cell_containing(nb, "fn withdraw_racy"))
    assert "locked: 0 of 200 accounts overdrawn" in race, race
    decompress = text_of(cell_containing(nb, "fn decompress_parallel"))
    assert "equal: true" in decompress and "round trip equal: true" in decompress, decompress
