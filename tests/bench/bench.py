#!/usr/bin/env python3
"""Latency benchmark of the kettle kernel (and of evcxr_jupyter, when installed) through a real
Jupyter client. Not a test: it prints a table of medians.

Run (after a release build of kettle):

    CARGO_TARGET_DIR=$HOME/.cache/kettle-target cargo build --release -p kettle
    python3 tests/bench/bench.py [--kettle PATH] [--spawns 3] [--think 3] [--runs 20]
                                 [--defines 5] [--dep-spawns 2] [--prints 100] [--lates 5]
                                 [--interrupts 5] [--reading 10] [--reruns 2]

The script creates (once) a venv in $HOME/.cache/kettle-bench-venv with `jupyter_client` and
re-runs itself inside it. kettle is started from a throwaway kernelspec pointing at the binary
(default: $HOME/.cache/kettle-target/release/kettle). evcxr_jupyter is measured when a kernelspec
whose command is evcxr_jupyter is installed (what `jupyter kernelspec list` shows); then the table
gets a kettle/evcxr ratio column. Both kernels get EVCXR_CONFIG_DIR = an empty directory, so a
user's evcxr.toml or init.evcxr cannot skew the numbers.

Metrics (medians):
  spawn -> kernel_info_reply   process start until the first kernel_info_reply
  spawn -> first `1` done      process start until the execute_reply of the first cell
  first variable, after N s    in the same fresh kernel, --think seconds after the first cell
                               (a learner reading on): one `let first = vec![1, 2, 3];`
  rayon, first use             a fresh kernel's first `:dep rayon` cell using a parallel
                               iterator (kettle: after `kettle warm`; evcxr_jupyter compiles)
  tokio (full), first use      then a `:dep tokio` cell running a runtime, same kernel
  trivial statement            one `let _ = 1;` cell, over --runs cells
  cell defining a variable     one `let vN = vec![1, 2, 3];` cell, over --defines cells
  cell ending in a value       one `v0` cell (shows the vector), over --runs cells
  print! -> iopub stream       one cell prints --prints wall-clock stamps without a newline,
                               20 ms apart; each stamp's latency is its arrival at the client
                               minus the stamp (same machine, same clock)
  late thread output delay     a thread left running by its cell prints a stamp 500 ms after the
                               cell returned; arrival minus stamp, over --lates cells
  interrupt_request -> idle    a `loop {}` cell, interrupted once it printed; from sending
                               interrupt_request to the cell's idle status, over --interrupts
  rayon / tokio, read ahead    kettle started for a notebook (JPY_SESSION_NAME, as Jupyter Server
                               sets it) whose cells are the two above: the same two cells, run
                               --reading seconds after the spawn (a learner reading the
                               notebook's introduction), over --dep-spawns fresh kernels
  spawn -> first `1`, spare    kettle with --spare (as installed): a kernel that ran a cell and
                               prepared a spare is shut down, the next one hands over to the
                               spare; kernel_info and first cell timed from that next spawn
  cells again, new kernel      kettle only: six ordinary cells (a function, variables, threads,
                               values) in a fresh kernel with an empty cell cache, then the same
                               cells in another fresh kernel ("Restart & Run All"), which finds
                               them compiled; the cells' total each time, over --reruns pairs
  resident memory              VmRSS of the kernel and of its descendants, after the first
                               cell and after the trivial and variable cells; of a kernel with
                               rayon and tokio (the read-ahead rows); and of a waiting spare

Every other row runs kettle with its cell cache off (KETTLE_CELL_CACHE_MB=0): the same cells in
each spawn would otherwise be found compiled, and the rows compare compiling with evcxr_jupyter.

The last three are measured for kettle only: evcxr_jupyter shows neither partial lines nor late
output, and its interrupt does not stop a running loop.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV = Path.home() / ".cache" / "kettle-bench-venv"
DEFAULT_KETTLE = Path.home() / ".cache" / "kettle-target" / "release" / "kettle"
TIMEOUT = 300  # seconds for any single reply: evcxr compiles every cell


def ensure_venv():
    """Re-executes this script in the bench venv, creating it on first use."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    # nbclient (for notebooks.py) brings jupyter_client and nbformat.
    if subprocess.run([str(python), "-c", "import nbclient"], capture_output=True).returncode:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "nbclient"], check=True)
    os.execv(str(python), [str(python), *sys.argv])


def kettle_kernelspec(tmp, kettle, name="kettle-bench", extra_args=()):
    """Installs a throwaway kernelspec `kettle-bench` for the binary `kettle` under `tmp` (found
    through JUPYTER_PATH); returns the environment for kernels: an empty EVCXR_CONFIG_DIR, so a
    user's evcxr.toml or init.evcxr cannot skew the numbers."""
    spec_dir = tmp / "kernels" / name
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [str(kettle.resolve()), "kernel", "--connection-file", "{connection_file}",
                 *extra_args],
        "display_name": "kettle (bench)",
        "language": "rust",
        "interrupt_mode": "message",
    }))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in [str(tmp), os.environ.get("JUPYTER_PATH", "")] if p)
    config_dir = tmp / "evcxr-config"
    config_dir.mkdir(exist_ok=True)
    return {**os.environ, "EVCXR_CONFIG_DIR": str(config_dir)}


def wait_reply(kc, msg_id):
    """The shell reply to msg_id (replies to other requests are skipped)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        msg = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def run_cell(kc, code):
    """Seconds from sending `code` to its execute_reply; fails loudly on an error reply."""
    start = time.monotonic()
    msg_id = kc.execute(code, store_history=True)
    reply = wait_reply(kc, msg_id)
    elapsed = time.monotonic() - start
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"cell {code!r} failed: {reply['content']}")
    return elapsed


class Started:
    """A kernel started from a kernelspec, with its client; a context manager."""

    def __init__(self, kernel_name, env):
        from jupyter_client import KernelManager

        self.km = KernelManager(kernel_name=kernel_name)
        self.env = env

    def __enter__(self):
        self.spawned = time.monotonic()
        self.km.start_kernel(env=self.env)
        self.kc = self.km.client()
        self.kc.start_channels()
        return self

    def pid(self):
        """The kernel process's id (jupyter_client's local provisioner)."""
        return self.km.provisioner.process.pid

    def __exit__(self, *exc):
        self.kc.stop_channels()
        try:
            self.km.shutdown_kernel(now=False)
        except Exception:
            self.km.shutdown_kernel(now=True)


# Resident memory per kernel name, filled by `measure`: {moment: (kernel MiB, children MiB)}.
MEMORY = {}


def resident_mib(pid):
    """Resident memory (VmRSS) of process `pid` and of all its descendants, in MiB."""
    parent_of, rss = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        parent_of[int(entry.name)] = int(stat[stat.rfind(")") + 2:].split()[1])
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[int(entry.name)] = int(line.split()[1]) / 1024
    tree, i = [pid], 0
    while i < len(tree):
        tree.extend(c for c, p in parent_of.items() if p == tree[i])
        i += 1
    return rss.get(pid, 0.0), sum(rss.get(c, 0.0) for c in tree[1:])


def measure(kernel_name, args, env):
    """All metrics for one kernel, as {metric: median seconds}."""
    to_info, to_first, first_var = [], [], []
    for _ in range(args.spawns):
        with Started(kernel_name, env) as k:
            reply = wait_reply(k.kc, k.kc.kernel_info())
            to_info.append(time.monotonic() - k.spawned)
            assert reply["msg_type"] == "kernel_info_reply", reply
            run_cell(k.kc, "1")
            to_first.append(time.monotonic() - k.spawned)
            time.sleep(args.think)
            first_var.append(run_cell(k.kc, "let first = vec![1, 2, 3];"))

    rayon, tokio = [], []
    for _ in range(args.dep_spawns):
        with Started(kernel_name, env) as k:
            run_cell(k.kc, "1")
            rayon.append(run_cell(k.kc, RAYON_CELL))
            tokio.append(run_cell(k.kc, TOKIO_CELL))

    with Started(kernel_name, env) as k:
        run_cell(k.kc, "1")  # warm up: the first cell waits for the engine
        time.sleep(args.think)  # a learner reading on; kettle's idle warm-up runs
        memory = {"idle after the first cell": resident_mib(k.pid())}
        trivial = [run_cell(k.kc, "let _ = 1;") for _ in range(args.runs)]
        defines = [run_cell(k.kc, f"let v{i} = vec![1, 2, 3];") for i in range(args.defines)]
        values = [run_cell(k.kc, "v0") for _ in range(args.runs)]
        cells = 1 + 2 * args.runs + args.defines
        memory[f"after {cells} cells"] = resident_mib(k.pid())
    MEMORY[kernel_name] = memory

    return {
        "spawn -> kernel_info_reply": statistics.median(to_info),
        "spawn -> first `1` done": statistics.median(to_first),
        f"first variable, after {args.think:g} s": statistics.median(first_var),
        "trivial statement": statistics.median(trivial),
        "cell defining a variable": statistics.median(defines),
        "cell ending in a value": statistics.median(values),
        "rayon, first use": statistics.median(rayon),
        "tokio (full), first use": statistics.median(tokio),
    }


# The dependency lines exactly as the notebooks (and `kettle warm`) write them.
RAYON_CELL = '\n'.join([
    ':dep rayon = "1"',
    "use rayon::prelude::*;",
    "(0..1000u64).into_par_iter().sum::<u64>()",
])
TOKIO_CELL = '\n'.join([
    ':dep tokio = { version = "1", features = ["full"] }',
    "tokio::runtime::Runtime::new().unwrap().block_on(async { 1 + 1 })",
])


# What the rerun rows run: the kinds of cells a course notebook has.
RERUN_CELLS = [
    "fn fib(n: u64) -> u64 { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }",
    "let f = fib(25);\nlet words: Vec<String> = (0..100).map(|i| format!(\"w{i}\")).collect();",
    "let handles: Vec<_> = (0..4u64).map(|i| std::thread::spawn(move || fib(20 + i))).collect();\n"
    "handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()",
    "f + 1",
    "words.iter().filter(|w| w.ends_with('7')).count()",
    "println!(\"{} words, fib(25) = {f}\", words.len());",
]


def measure_rerun(args, env, tmp):
    """The rerun rows: RERUN_CELLS in a fresh kernel with an empty cell cache, then again in
    another fresh kernel."""
    first, again = [], []
    for n in range(args.reruns):
        cache_env = {**env, "KETTLE_CELL_CACHE_DIR": str(Path(tmp) / f"cells-{n}")}
        for times in (first, again):
            with Started("kettle-bench", cache_env) as k:
                run_cell(k.kc, "1")
                time.sleep(args.think)
                times.append(sum(run_cell(k.kc, cell) for cell in RERUN_CELLS))
    cells = len(RERUN_CELLS)
    return {
        f"{cells} cells, first run": statistics.median(first),
        f"{cells} cells again, new kernel": statistics.median(again),
    }


# Microseconds since the Unix epoch, as the stamps the cells print.
NOW_MICROS = ("std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)"
              ".unwrap().as_micros()")


def iopub_for(kc, msg_id, until, timeout=TIMEOUT):
    """Yields (arrival time.time(), msg) for iopub messages of msg_id until `until(msg)`."""
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        arrived = time.time()
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        yield arrived, msg
        if until(msg):
            return


def is_idle(msg):
    return msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"


def stamps(text):
    """The `<micros>;` stamps in a stream text, as seconds."""
    return [int(t) / 1e6 for t in text.split(";") if t.strip().isdigit()]


def print_latencies(kc, prints):
    """Latency of each of `prints` partial-line prints from the child to the client."""
    code = (f"for _ in 0..{prints} {{ print!(\"{{}};\", {NOW_MICROS}); "
            "std::thread::sleep(std::time::Duration::from_millis(20)); }")
    latencies = []
    msg_id = kc.execute(code)
    for arrived, msg in iopub_for(kc, msg_id, is_idle):
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            latencies += [arrived - t for t in stamps(msg["content"]["text"])]
    wait_reply(kc, msg_id)
    if len(latencies) != prints:
        raise RuntimeError(f"saw {len(latencies)} of {prints} stamps")
    return latencies


def late_delay(kc):
    """Delay of a stamp printed by a thread 500 ms after its cell returned."""
    code = ("std::thread::spawn(|| { std::thread::sleep(std::time::Duration::from_millis(500)); "
            f"println!(\"{{}};\", {NOW_MICROS}); }});")
    msg_id = kc.execute(code)
    reply = wait_reply(kc, msg_id)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"late-output cell failed: {reply['content']}")
    # The idle comes first; the stamp after it, on the same parent, with no other request.
    is_stamp = lambda m: m["msg_type"] == "stream" and stamps(m["content"]["text"])
    for arrived, msg in iopub_for(kc, msg_id, is_stamp, timeout=10):
        if is_stamp(msg):
            return arrived - stamps(msg["content"]["text"])[0]


def interrupt_to_idle(kc):
    """Seconds from interrupt_request (control channel) to the idle of a looping cell."""
    msg_id = kc.execute("println!(\"looping\"); loop { std::hint::spin_loop(); }")
    running = lambda m: m["msg_type"] == "stream" and "looping" in m["content"]["text"]
    for _ in iopub_for(kc, msg_id, running):
        pass
    sent = time.time()
    kc.control_channel.send(kc.session.msg("interrupt_request", {}))
    for arrived, msg in iopub_for(kc, msg_id, is_idle, timeout=60):
        idle_at = arrived
    reply = wait_reply(kc, msg_id)
    if reply["content"].get("ename") != "Interrupted":
        raise RuntimeError(f"interrupted cell replied {reply['content']}")
    # Drain the interrupt_reply, so control replies do not pile up.
    kc.get_control_msg(timeout=10)
    return idle_at - sent


def measure_concurrency(kernel_name, args, env):
    """The live-output and interrupt metrics (kettle only), as {metric: median seconds}."""
    with Started(kernel_name, env) as k:
        run_cell(k.kc, "1")
        prints = print_latencies(k.kc, args.prints)
        lates = [late_delay(k.kc) for _ in range(args.lates)]
        interrupts = []
        for _ in range(args.interrupts):
            interrupts.append(interrupt_to_idle(k.kc))
            # The interrupt restarted the process running cells; let it settle first.
            run_cell(k.kc, "1")
    return {
        f"print! -> iopub stream (median of {len(prints)})": statistics.median(prints),
        "late thread output delay": statistics.median(lates),
        "interrupt_request -> idle": statistics.median(interrupts),
    }


def spare_listening(spare_dir):
    return any(p.suffix == ".sock" for p in spare_dir.iterdir()) if spare_dir.exists() else False


def wait_for_spare(spare_dir, timeout=120):
    deadline = time.monotonic() + timeout
    while not spare_listening(spare_dir):
        if time.monotonic() > deadline:
            raise RuntimeError("no spare kernel appeared")
        time.sleep(0.1)


def spare_pids(spare_dir):
    """Pids of the running spares (their lock files hold them)."""
    pids = []
    for lock in spare_dir.glob("*.lock"):
        try:
            pid = int(lock.read_text().strip())
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1] == b"spare":
                pids.append(pid)
        except (OSError, ValueError, IndexError):
            pass
    return pids


def measure_spare(args, env, spare_dir):
    """kettle with --spare (what the installed kernelspec does): a kernel prepares a spare once
    idle; the next start hands over to it. {metric: median seconds}, plus the spare's memory."""
    with Started("kettle-bench-spare", env) as k:
        run_cell(k.kc, "1")
        wait_for_spare(spare_dir)
    memory = None
    for pid in spare_pids(spare_dir):
        memory = resident_mib(pid)
    to_info, to_first = [], []
    for _ in range(args.spawns):
        with Started("kettle-bench-spare", env) as k:
            reply = wait_reply(k.kc, k.kc.kernel_info())
            to_info.append(time.monotonic() - k.spawned)
            assert reply["msg_type"] == "kernel_info_reply", reply
            run_cell(k.kc, "1")
            to_first.append(time.monotonic() - k.spawned)
            wait_for_spare(spare_dir)
    for pid in spare_pids(spare_dir):
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    if memory:
        MEMORY["kettle-bench-spare"] = {"a waiting spare": memory}
    return {
        "spawn -> kernel_info_reply, spare ready": statistics.median(to_info),
        "spawn -> first `1` done, spare ready": statistics.median(to_first),
    }


def measure_read_ahead(args, env, tmp):
    """kettle started for a notebook that declares rayon and tokio: its first rayon and tokio
    cells, --reading seconds after the spawn. {metric: median seconds}"""
    notebook = Path(tmp) / "read-ahead.ipynb"
    cells = [{"cell_type": "code", "source": cell, "metadata": {}, "outputs": [],
              "execution_count": None} for cell in (RAYON_CELL, TOKIO_CELL)]
    notebook.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                    "cells": cells}))
    rayon, tokio = [], []
    for _ in range(args.dep_spawns):
        with Started("kettle-bench", {**env, "JPY_SESSION_NAME": str(notebook)}) as k:
            time.sleep(max(0.0, args.reading - (time.monotonic() - k.spawned)))
            rayon.append(run_cell(k.kc, RAYON_CELL))
            tokio.append(run_cell(k.kc, TOKIO_CELL))
            MEMORY["kettle-bench-read-ahead"] = {"after rayon and tokio": resident_mib(k.pid())}
    return {
        f"rayon, first use, read ahead, {args.reading:g} s": statistics.median(rayon),
        f"tokio (full), first use, read ahead, {args.reading:g} s": statistics.median(tokio),
    }


def find_evcxr_spec():
    """Name of an installed evcxr_jupyter kernelspec, or None."""
    from jupyter_client.kernelspec import KernelSpecManager

    ksm = KernelSpecManager()
    for name in ksm.find_kernel_specs():
        try:
            argv = ksm.get_kernel_spec(name).argv
        except Exception:
            continue
        if argv and "evcxr_jupyter" in Path(argv[0]).name:
            return name
    return None


def print_table(results):
    names = list(results)
    metrics = list(next(iter(results.values())))
    header = ["metric", *names]
    if len(names) == 2:
        header.append(f"{names[0]}/{names[1]}")
    rows = []
    for metric in metrics:
        row = [metric, *(f"{results[n][metric]:.3f} s" for n in names)]
        if len(names) == 2:
            a, b = (results[n][metric] for n in names)
            row.append(f"{a / b:.2f}" if b else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                              for i, (c, w) in enumerate(zip(r, widths)))
    print(fmt(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt(r))


def main():
    ensure_venv()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kettle", type=Path, default=DEFAULT_KETTLE, help="kettle binary")
    parser.add_argument("--spawns", type=int, default=3, help="kernel starts per kernel")
    parser.add_argument("--think", type=float, default=3.0,
                        help="seconds between the first cell and the first variable")
    parser.add_argument("--dep-spawns", type=int, default=2,
                        help="fresh kernels timing their first rayon and tokio cells")
    parser.add_argument("--reading", type=float, default=10.0,
                        help="seconds from spawn to the first cell, for the read-ahead rows")
    parser.add_argument("--reruns", type=int, default=2,
                        help="pairs of kernels running the same cells, for the rerun rows")
    parser.add_argument("--runs", type=int, default=20, help="trivial cells per kernel")
    parser.add_argument("--defines", type=int, default=5, help="variable-defining cells")
    parser.add_argument("--prints", type=int, default=100, help="partial-line prints timed")
    parser.add_argument("--lates", type=int, default=5, help="late-output cells timed")
    parser.add_argument("--interrupts", type=int, default=5, help="interrupted cells timed")
    args = parser.parse_args()
    if not args.kettle.exists():
        sys.exit(f"no kettle binary at {args.kettle}; build it or pass --kettle")

    with tempfile.TemporaryDirectory(prefix="kettle-bench-") as tmp:
        cache_env = kettle_kernelspec(Path(tmp), args.kettle)
        env = {**cache_env, "KETTLE_CELL_CACHE_MB": "0"}
        kettle_kernelspec(Path(tmp), args.kettle, "kettle-bench-spare", ["--spare"])
        spare_dir = Path(tmp) / "spares"

        results = {}
        print("measuring kettle ...", file=sys.stderr)
        results["kettle"] = measure("kettle-bench", args, env)
        evcxr = find_evcxr_spec()
        if evcxr:
            print(f"measuring evcxr_jupyter (kernelspec {evcxr!r}) ...", file=sys.stderr)
            results["evcxr"] = measure(evcxr, args, env)
        else:
            print("no evcxr_jupyter kernelspec installed: kettle only", file=sys.stderr)
        print("measuring kettle's live output and interrupt ...", file=sys.stderr)
        concurrency = {"kettle": measure_concurrency("kettle-bench", args, env)}
        print("measuring kettle started for a notebook ...", file=sys.stderr)
        concurrency["kettle"].update(measure_read_ahead(args, env, tmp))
        print("measuring kettle's cell cache ...", file=sys.stderr)
        concurrency["kettle"].update(measure_rerun(args, cache_env, tmp))
        print("measuring kettle with spare kernels ...", file=sys.stderr)
        spare_env = {**env, "KETTLE_SPARE_DIR": str(spare_dir)}
        concurrency["kettle"].update(measure_spare(args, spare_env, spare_dir))
    print_table(results)
    print()
    print_table(concurrency)
    print()
    print("resident memory (MiB): kernel process + the processes it started (evaluator, rustc)")
    for spec, moments in MEMORY.items():
        name = {"kettle-bench": "kettle", "kettle-bench-spare": "spare",
                "kettle-bench-read-ahead": "kettle"}.get(spec, "evcxr")
        for moment, (own, children) in moments.items():
            print(f"  {name:7} {moment:26} {own:7.1f} + {children:7.1f}")


if __name__ == "__main__":
    main()
