#!/usr/bin/env python3
"""Builds a course notebook (.ipynb) from its readable source (notebooks/src/NN-name.md).

The source is Markdown. Each ```rust fence becomes a code cell, the text between fences becomes
Markdown cells (split further at lines `<!-- cell -->`). In a fence, two directives pull in code
that is compiled and tested as ordinary Rust in crates/kettle-lab/tests/lab/, so a notebook cell
cannot drift from its tested twin:

    //@region threads.rs C4          the lines between `// [cell C4]` and `// [end]`, dedented
    //@file compile_fail/e0373.rs    a whole file (cells that must not compile)

The fence's info string may carry cell tags: ```rust raises-exception (`hide-input` also
collapses the cell's source, for worked solutions)

Usage:
    build_notebook.py notebooks/src/01-threads.md             # write notebooks/01-threads.ipynb, no outputs
    build_notebook.py notebooks/src/01-threads.md --execute   # ... executed through the kettle kernel
    build_notebook.py notebooks/src/01-threads.md --check     # exit 1 if the .ipynb's code differs

--execute needs the `kettle` kernelspec (`kettle install --user`) and nbclient; the notebook
runs with stdin disabled, so its InputReader cells use the typist (see kettle_lab::keyboard).
"""
from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
TESTED_CODE = ROOT / "crates" / "kettle-lab" / "tests" / "lab"

KERNELSPEC = {"name": "kettle", "display_name": "Rust (kettle)", "language": "rust"}
LANGUAGE_INFO = {
    "name": "rust",
    "file_extension": ".rs",
    "mimetype": "text/rust",
    "codemirror_mode": "rust",
    "pygments_lexer": "rust",
}

FENCE = re.compile(r"^```rust\b(?P<tags>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
DIRECTIVE = re.compile(r"^[ \t]*//@(?P<kind>region|file)[ \t]+(?P<args>.+?)[ \t]*$", re.M)


def region(file: str, cell_id: str) -> str:
    """The code between `// [cell ID]` and the next `// [end]` in a tested file, dedented."""
    text = (TESTED_CODE / file).read_text()
    m = re.search(
        rf"^[ \t]*// \[cell {re.escape(cell_id)}\][ \t]*\n(.*?)^[ \t]*// \[end\][ \t]*$",
        text,
        re.M | re.S,
    )
    if not m:
        raise SystemExit(f"{file}: no region `// [cell {cell_id}]`")
    return textwrap.dedent(m.group(1)).strip("\n")


def expand(body: str) -> str:
    def one(m: re.Match[str]) -> str:
        args = m.group("args").split()
        if m.group("kind") == "region":
            return region(*args)
        return (TESTED_CODE / args[0]).read_text().strip("\n")

    return DIRECTIVE.sub(one, body).strip("\n")


def build(source: Path) -> nbformat.NotebookNode:
    text = source.read_text()
    cells = []

    def markdown(chunk: str) -> None:
        for part in re.split(r"^<!-- cell -->[ \t]*$", chunk, flags=re.M):
            if part.strip():
                cells.append(nbformat.v4.new_markdown_cell(part.strip("\n")))

    pos = 0
    for m in FENCE.finditer(text):
        markdown(text[pos : m.start()])
        cell = nbformat.v4.new_code_cell(expand(m.group("body")))
        tags = m.group("tags").split()
        if tags:
            cell.metadata["tags"] = tags
        if "hide-input" in tags:  # worked solutions: collapsed until the reader opens them
            cell.metadata["jupyter"] = {"source_hidden": True}
        cells.append(cell)
        pos = m.end()
    markdown(text[pos:])

    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = dict(LANGUAGE_INFO)
    return nb


def code_of(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    return [
        (c.cell_type, c.source, list(c.metadata.get("tags", [])))
        for c in nb.cells
    ]


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 600) -> None:
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        kernel_name=KERNELSPEC["name"],
        timeout=timeout,
        allow_errors=False,  # cells tagged raises-exception may fail, and only those
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    # Ids stay stable between builds so that diffs show changed outputs, not churn.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("--out", type=Path, help="default: notebooks/<source stem>.ipynb")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--execute", action="store_true", help="run it through the kettle kernel")
    mode.add_argument("--check", action="store_true", help="compare with the existing .ipynb")
    args = ap.parse_args()
    out = args.out or ROOT / "notebooks" / f"{args.source.stem}.ipynb"

    nb = build(args.source)
    if args.check:
        current = nbformat.read(out, as_version=4)
        if code_of(current) != code_of(nb):
            print(f"{out} is out of date: rebuild it with {Path(__file__).name} --execute", file=sys.stderr)
            return 1
        return 0
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    if args.execute:
        execute(nb, out.parent)
    nbformat.validate(nb)
    nbformat.write(nb, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
