#!/usr/bin/env python3
"""Plots every ratio over time from benchmark runs (the `run.json` files that `bench_report
--run-out` writes, found anywhere under the given directories), one line per ratio, its goal
dashed. Writes a PNG or an SVG (by the file name).

    python3 benches/plot_history.py DIR... --out bench-history.svg [--only tcp_ udp_ ...]
"""
import argparse
import json
import pathlib
import sys


def runs(dirs):
    found = []
    for d in dirs:
        for path in sorted(pathlib.Path(d).rglob("run.json")) + sorted(pathlib.Path(d).rglob("*-run.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            run = data.get("run", data)
            if "ratios" in run and "date" in run:
                found.append(run)
    # One point per commit and date, in time order.
    unique = {(r["date"], r.get("commit", "")): r for r in found}
    return [unique[k] for k in sorted(unique)]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--out", default="bench-history.svg")
    ap.add_argument("--only", nargs="*", default=["tcp_", "udp_", "flows64", "idle5000"],
                    help="ratio id prefixes to plot (default: the relay's)")
    args = ap.parse_args()
    history = runs(args.dirs)
    if not history:
        sys.exit("plot_history: no run.json found")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = sorted({i for r in history for i in r["ratios"] if any(i.startswith(p) for p in args.only)})
    fig, ax = plt.subplots(figsize=(11, 6))
    for rid in ids:
        xs, ys = [], []
        for n, r in enumerate(history):
            value = r["ratios"].get(rid, {})
            if isinstance(value, dict) and "Value" in value:
                xs.append(n)
                ys.append(value["Value"])
        if ys:
            ax.plot(xs, ys, marker="o", label=rid)
    ax.set_xticks(range(len(history)))
    ax.set_xticklabels([f'{r["date"][:10]}\n{r.get("commit", "")}' for r in history], fontsize=7)
    ax.set_ylabel("ratio (same-run baseline = 1)")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_title("cloudproxy relay benchmarks: ratio over time (failed cases are gaps)")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"plot_history: {len(history)} run(s), {len(ids)} ratio(s) -> {args.out}")


if __name__ == "__main__":
    main()
