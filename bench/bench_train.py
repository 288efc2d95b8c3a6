"""Trainer throughput: training pairs per second and batch-cutting speed, per model.

Usage::

    .venv/bin/python bench/bench_train.py --split dataset/all            # after make dataset
    .venv/bin/python bench/bench_train.py --split DATASET/all --configs 2018:42 --threads 1 2

    # before and after a change, in one run: export the older tree, then
    git archive <commit> | (mkdir -p /tmp/before && tar -x -C /tmp/before)
    .venv/bin/python bench/bench_train.py --split DATASET/all --configs 2018:42 \
        --against /tmp/before

Every measurement trains ``--pairs`` pairs of the split's train part with the
real training loop (no refinement, no batch-norm recalibration, one short
validation) in a fresh process (process-wide settings such as the memory
allocator's cannot leak from one measurement into the next) and reports the
loop's own figures: training steps (batch cutting, forward, loss, backward,
Adam) in pairs per wall-clock second, and batch cutting alone.  It also
reports pairs per CPU second of the process during the run (user + system
time, validation and packing included), which a busy machine disturbs less
than wall-clock time.  With ``--against`` the two trees are measured in
turn, ``--runs`` times each, so both see the same machine load; the table
gives medians and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
CONFIGS = ("2018:42", "2019:42", "2019:168", "2019-attention:84", "2019-attention:168")

# Runs in a fresh interpreter with PYTHONPATH set to the tree under test; prints one JSON line.
WORKER = r"""
import dataclasses, json, resource, sys, tempfile
args = json.loads(sys.argv[1])
import msmd_builder
from msmd_builder.train.data import load_split
from msmd_builder.train.loop import train
from msmd_builder.train.settings import TrainSettings
parts = load_split(args["split"], ("train", "valid"))
fields = {f.name for f in dataclasses.fields(TrainSettings)}
wanted = dict(model=args["model"], context_frames=args["context"], epoch_pairs=args["pairs"],
              max_epochs=1, valid_pairs=100, refine_cca_pairs=0, bn_recalibration_pairs=0,
              precision=args["precision"], threads=args["threads"], seed=args["seed"])
settings = TrainSettings(**{k: v for k, v in wanted.items() if k in fields})
before = resource.getrusage(resource.RUSAGE_SELF)
with tempfile.TemporaryDirectory() as out:
    result = train(parts["train"], parts["valid"] or parts["train"], settings, out, log=None)
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(json.dumps({
    "tree": msmd_builder.__file__,
    "train": result.throughput["train_pairs_per_s"],
    "cut": result.throughput["extract_pairs_per_s"],
    "cpu": result.throughput["pairs_seen"] / cpu,
    "system_s": after.ru_stime - before.ru_stime,
    "precision": result.throughput.get("precision"),
}))
"""


def measure(tree: Path, job: dict) -> dict:
    """Run one measurement of ``tree`` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(job)],
        env=env,
        cwd=tree,  # `python -c` puts the working folder first on sys.path
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"measurement failed in {tree}:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["tree"].startswith(str(tree)):
        raise SystemExit(f"{tree}: the worker imported {result['tree']} instead")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=Path("dataset") / "all")
    parser.add_argument("--pairs", type=int, default=2000, help="training pairs per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), metavar="MODEL:CONTEXT")
    parser.add_argument(
        "--precision", nargs="+", default=["auto"], choices=["auto", "float32", "bfloat16"]
    )
    parser.add_argument(
        "--against", type=Path, help="another msmd-builder tree to measure in turn (before)"
    )
    args = parser.parse_args()

    trees = [("this", HERE)]
    if args.against is not None:
        trees.insert(0, ("before", args.against.resolve()))
    print(
        f"{args.split}: {args.pairs} pairs per run, median of {args.runs} runs, "
        f"{os.cpu_count()} CPUs"
    )
    head = "| model | context | precision | threads |"
    for name, _ in trees:
        head += f" {name}: training pairs/s | {name}: pairs/CPU-s | {name}: cutting pairs/s |"
    if len(trees) == 2:
        head += " ratio (training) | ratio (CPU) |"
    print(head)
    print("|" + " --- |" * (head.count("|") - 1))
    for precision in args.precision:
        for config in args.configs:
            model, context = config.split(":")
            for threads in args.threads:
                results: dict[str, list[dict]] = {name: [] for name, _ in trees}
                for run in range(args.runs):
                    job = dict(
                        split=str(args.split.resolve()),
                        model=model,
                        context=int(context),
                        pairs=args.pairs,
                        precision=precision,
                        threads=threads,
                        seed=run,
                    )
                    for name, tree in trees:  # interleaved: both trees see the same load
                        results[name].append(measure(tree, job))
                label = results[trees[-1][0]][0]["precision"]
                line = f"| {model} | {context} | {label} | {threads} |"
                medians = {}
                for name, _ in trees:
                    rows = results[name]
                    medians[name] = {
                        key: statistics.median(r[key] for r in rows)
                        for key in ("train", "cpu", "cut")
                    }
                    m = medians[name]
                    line += f" {m['train']:.1f} | {m['cpu']:.1f} | {m['cut']:,.0f} |"
                if len(trees) == 2:
                    before, after = medians["before"], medians["this"]
                    line += (
                        f" {after['train'] / before['train']:.2f}x |"
                        f" {after['cpu'] / before['cpu']:.2f}x |"
                    )
                print(line, flush=True)


if __name__ == "__main__":
    main()
