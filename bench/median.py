#!/usr/bin/env python3
"""Runs a harness that prints Markdown tables (the loopback harness) several times and prints
each table cell's median over the runs.

One run of `loopback` on this shared two-core VM moves by 10-30% from the next, more than the
effects worth measuring, so figures worth quoting are medians over runs. Columns whose name
says "x naive" (the ratios the targets are stated in) also show the lowest and highest run.

    python3 bench/median.py 7 -- target/release/loopback --paced --pin
    python3 bench/median.py 5 -- target/release/loopback --size 1200 --only "1 worker"

Rows are matched across runs by their first two cells (variant and size). Exits 1 if a run
fails or prints no table.
"""

import statistics
import subprocess
import sys


def tables(text):
    """Yields (header, rows) for every Markdown table in `text`; rows are lists of cells."""
    header, rows = None, []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
            elif not all(set(c) <= set("-: ") for c in cells):
                rows.append(cells)
        elif header is not None:
            yield header, rows
            header, rows = None, []


def number(cell):
    """The cell's value and unit suffix: "1.23x" is (1.23, "x"), "0.7%" (0.7, "%"), "42" (42, "")."""
    suffix = cell[-1:] if cell[-1:] in ("x", "%") else ""
    try:
        return float(cell[: len(cell) - len(suffix)]), suffix
    except ValueError:
        return None, ""


def main(argv):
    if "--" not in argv or argv.index("--") != 2 or not argv[1].isdigit() or int(argv[1]) < 1:
        print(__doc__, file=sys.stderr)
        return 2
    runs, command = int(argv[1]), argv[3:]
    # (table index) -> header; (table index, variant, size) -> column -> values
    headers, cells, order = {}, {}, []
    # (table index, column) -> the unit suffix its cells carry ("x" for ratios, "%")
    suffixes = {}
    for run in range(runs):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"run {run + 1} failed ({done.returncode}):\n{done.stderr}", file=sys.stderr)
            return 1
        found = list(tables(done.stdout))
        if not found:
            print(f"run {run + 1} printed no table", file=sys.stderr)
            return 1
        for t, (header, rows) in enumerate(found):
            headers[t] = header
            for row in rows:
                key = (t, row[0], row[1] if len(row) > 1 else "")
                if key not in cells:
                    cells[key] = {}
                    order.append(key)
                for column, cell in enumerate(row[2:], start=2):
                    value, suffix = number(cell)
                    if value is not None:
                        cells[key].setdefault(column, []).append(value)
                        if suffix:
                            suffixes[(t, column)] = suffix
        print(f"run {run + 1} of {runs} done", file=sys.stderr)
    last = None
    for key in order:
        t, variant, size = key
        header = headers[t]
        if t != last:
            print(f"\nMedian of {runs} runs: {' '.join(command)}\n")
            print("| " + " | ".join(header) + " |")
            print("|" + " --- |" * len(header))
            last = t
        out = [variant, size]
        for column in range(2, len(header)):
            values = cells[key].get(column, [])
            if not values:
                out.append("-")
                continue
            median = statistics.median(values)
            suffix = suffixes.get((t, column), "")
            digits = 3 if median < 1 and "Mpps" in header[column] else (0 if median >= 100 else 2)
            text = f"{median:.{digits}f}{suffix}"
            # A ratio (a column named "x naive", or whose cells end in "x") also shows its range.
            if ("x naive" in header[column] or suffix == "x") and len(values) > 1:
                text += f" ({min(values):.2f}-{max(values):.2f})"
            out.append(text)
        print("| " + " | ".join(out) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
