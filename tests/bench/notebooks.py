#!/usr/bin/env python3
"""Each course notebook end to end through the kettle kernel, cold and then warm. Not a test:
it prints a table.

Run (after a release build of kettle):

    python3 tests/bench/notebooks.py [--kettle PATH] [--only 01,04]

Cold: a fresh cache directory (XDG_CACHE_HOME), so the kernel's work slots and the kettle-worker
build start empty and every dependency (the course crates, rayon, tokio) is compiled by the
notebook that first needs it; crate sources come from cargo's registry cache as usual. This is
what a learner's first run on a new machine costs when `kettle lab` has not warmed up yet.
Warm: the same notebooks again with that cache, as on every later run: the dependencies are
built, and each cell finds its compile kept from the cold run (kettle's cell cache).

For each notebook: seconds from starting the kernel to the last cell's reply, warm/cold, and the
resident memory of the kernel process and of the processes it started at the end of the warm
run. Most of a course notebook's time is the work its cells measure (sleeps standing in for
downloads, CPU-bound loops), the same cold or warm; so the table also shows the kernel's share:
the total minus the time the cells' code ran (evcxr's "Execution" phase, which the copy run here
reports through a `:timing` cell put first), i.e. starting, compiling and building dependencies.
Uses the venv of bench.py (created on first use).
"""

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import DEFAULT_KETTLE, ensure_venv, kettle_kernelspec, resident_mib  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CELL_TIMEOUT = 900  # a cold tokio build on two cores


# kettle's `:timing` display: "Took 1077 ms · Final compile 1001 ms · Execution 0 ms".
EXECUTION = re.compile(r"^Took \d+ ms.* · Execution (\d+) ms$")


def cells_run_time(nb):
    """Seconds the cells' own code ran, from the `:timing` displays in `nb`'s outputs."""
    ms = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain", "")
            match = EXECUTION.match(text) if isinstance(text, str) else None
            if match:
                ms += int(match.group(1))
    return ms / 1000


def run_notebook(path, env):
    """(seconds, seconds the cells' code ran, (kernel MiB, children MiB) at the end) for one run
    of `path`."""
    import nbformat
    from jupyter_client import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    nb.cells.insert(0, nbformat.v4.new_code_cell(":timing"))
    km = KernelManager(kernel_name="kettle-bench")
    start = time.monotonic()
    km.start_kernel(env=env, cwd=str(path.parent))
    try:
        NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, allow_errors=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        elapsed = time.monotonic() - start
        memory = resident_mib(km.provisioner.process.pid)
    finally:
        km.shutdown_kernel(now=False)
    return elapsed, cells_run_time(nb), memory


def main():
    ensure_venv()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kettle", type=Path, default=DEFAULT_KETTLE, help="kettle binary")
    parser.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 01,04")
    args = parser.parse_args()
    if not args.kettle.exists():
        sys.exit(f"no kettle binary at {args.kettle}; build it or pass --kettle")
    wanted = [n for n in args.only.split(",") if n]
    notebooks = [p for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
                 if not wanted or p.name[:2] in wanted]

    rows = []
    with tempfile.TemporaryDirectory(prefix="kettle-nb-bench-") as tmp:
        tmp = Path(tmp)
        env = kettle_kernelspec(tmp, args.kettle)
        env["XDG_CACHE_HOME"] = str(tmp / "cache")
        env.pop("KETTLE_WORK_DIR", None)
        env.pop("KETTLE_WORKER", None)
        runs = {}
        for phase in ("cold", "warm"):
            for path in notebooks:
                print(f"{phase}: {path.name} ...", file=sys.stderr, flush=True)
                runs[phase, path.name] = run_notebook(path, env)
        for path in notebooks:
            cold, cold_cells, _ = runs["cold", path.name]
            warm, warm_cells, (own, children) = runs["warm", path.name]
            rows.append((path.name, cold, warm, cold - cold_cells, warm - warm_cells, own, children))

    print(f"{'':28} {'start to last reply':^28}  {'kernel share (total - cells)':^28}")
    print(f"{'notebook':28} {'cold':>8} {'warm':>8} {'warm/cold':>9}  {'cold':>8} {'warm':>8} "
          f"{'warm/cold':>9}  {'memory at the end (MiB)':>24}")
    for name, cold, warm, cold_k, warm_k, own, children in rows:
        print(f"{name:28} {cold:7.1f}s {warm:7.1f}s {warm / cold:9.2f}  {cold_k:7.1f}s "
              f"{warm_k:7.1f}s {warm_k / cold_k:9.2f}  {own:10.0f} + {children:5.0f} "
              "(kernel + children)")
    totals = [sum(r[i] for r in rows) for i in (1, 2, 3, 4)]
    print(f"{'all':28} {totals[0]:7.1f}s {totals[1]:7.1f}s {totals[1] / totals[0]:9.2f}  "
          f"{totals[2]:7.1f}s {totals[3]:7.1f}s {totals[3] / totals[2]:9.2f}")


if __name__ == "__main__":
    main()
