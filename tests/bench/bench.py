#!/usr/bin/env python3
"""Latency benchmark of the kettle kernel (and of evcxr_jupyter, when installed) through a real
Jupyter client. Not a test: it prints a table of medians.

Run (after a release build of kettle):

    CARGO_TARGET_DIR=$HOME/.cache/kettle-target cargo build --release -p kettle
    python3 tests/bench/bench.py [--kettle PATH] [--spawns 3] [--runs 20] [--defines 5]

The script creates (once) a venv in $HOME/.cache/kettle-bench-venv with `jupyter_client` and
re-runs itself inside it. kettle is started from a throwaway kernelspec pointing at the binary
(default: $HOME/.cache/kettle-target/release/kettle). evcxr_jupyter is measured when a kernelspec
whose command is evcxr_jupyter is installed (what `jupyter kernelspec list` shows); then the table
gets a kettle/evcxr ratio column. Both kernels get EVCXR_CONFIG_DIR = an empty directory, so a
user's evcxr.toml or init.evcxr cannot skew the numbers.

Metrics (medians):
  spawn -> kernel_info_reply   process start until the first kernel_info_reply
  spawn -> first `1` done      process start until the execute_reply of the first cell
  trivial statement            one `let _ = 1;` cell, over --runs cells
  cell defining a variable     one `let vN = vec![1, 2, 3];` cell, over --defines cells
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
        subprocess.run([str(python), "-m", "pip", "install", "-q", "jupyter_client"], check=True)
    os.execv(str(python), [str(python), *sys.argv])


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

    def __exit__(self, *exc):
        self.kc.stop_channels()
        try:
            self.km.shutdown_kernel(now=False)
        except Exception:
            self.km.shutdown_kernel(now=True)


def measure(kernel_name, args, env):
    """All metrics for one kernel, as {metric: median seconds}."""
    to_info, to_first = [], []
    for _ in range(args.spawns):
        with Started(kernel_name, env) as k:
            reply = wait_reply(k.kc, k.kc.kernel_info())
            to_info.append(time.monotonic() - k.spawned)
            assert reply["msg_type"] == "kernel_info_reply", reply
            run_cell(k.kc, "1")
            to_first.append(time.monotonic() - k.spawned)

    with Started(kernel_name, env) as k:
        run_cell(k.kc, "1")  # warm up: the first cell waits for the engine
        trivial = [run_cell(k.kc, "let _ = 1;") for _ in range(args.runs)]
        defines = [run_cell(k.kc, f"let v{i} = vec![1, 2, 3];") for i in range(args.defines)]

    return {
        "spawn -> kernel_info_reply": statistics.median(to_info),
        "spawn -> first `1` done": statistics.median(to_first),
        "trivial statement": statistics.median(trivial),
        "cell defining a variable": statistics.median(defines),
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
    parser.add_argument("--runs", type=int, default=20, help="trivial cells per kernel")
    parser.add_argument("--defines", type=int, default=5, help="variable-defining cells")
    args = parser.parse_args()
    if not args.kettle.exists():
        sys.exit(f"no kettle binary at {args.kettle}; build it or pass --kettle")

    with tempfile.TemporaryDirectory(prefix="kettle-bench-") as tmp:
        tmp = Path(tmp)
        # A throwaway kernelspec for kettle, found through JUPYTER_PATH.
        spec_dir = tmp / "kernels" / "kettle-bench"
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [str(args.kettle.resolve()), "kernel", "--connection-file",
                     "{connection_file}"],
            "display_name": "kettle (bench)",
            "language": "rust",
            "interrupt_mode": "message",
        }))
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            p for p in [str(tmp), os.environ.get("JUPYTER_PATH", "")] if p)
        config_dir = tmp / "evcxr-config"
        config_dir.mkdir()
        env = {**os.environ, "EVCXR_CONFIG_DIR": str(config_dir)}

        results = {}
        print("measuring kettle ...", file=sys.stderr)
        results["kettle"] = measure("kettle-bench", args, env)
        evcxr = find_evcxr_spec()
        if evcxr:
            print(f"measuring evcxr_jupyter (kernelspec {evcxr!r}) ...", file=sys.stderr)
            results["evcxr"] = measure(evcxr, args, env)
        else:
            print("no evcxr_jupyter kernelspec installed: kettle only", file=sys.stderr)
    print_table(results)


if __name__ == "__main__":
    main()
