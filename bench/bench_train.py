"""Trainer throughput: training pairs per second and pair-extraction speed, per model.

Usage::

    .venv/bin/python bench/bench_train.py --split dataset/all            # after make dataset
    .venv/bin/python bench/bench_train.py --split DATASET/bach_split --threads 1 --runs 3

For each (model, context, precision) it trains ``--pairs`` pairs from the
split's train part with the real training loop (no refinement, one short
validation) ``--runs`` times and prints the median of the loop's own
measurements: training steps (pair cutting, forward, loss, backward, Adam)
in pairs per second, and pair cutting alone (``PairPool.batch``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

CONFIGS = (
    ("2018", 42),
    ("2019", 42),
    ("2019", 168),
    ("2019-attention", 84),
    ("2019-attention", 168),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=Path("dataset") / "all")
    parser.add_argument("--pairs", type=int, default=2000, help="training pairs per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--precision", nargs="+", default=["auto"], choices=["auto", "float32", "bfloat16"]
    )
    args = parser.parse_args()

    from msmd_builder.train.data import load_split
    from msmd_builder.train.loop import train
    from msmd_builder.train.runtime import use_bfloat16
    from msmd_builder.train.settings import TrainSettings

    parts = load_split(args.split, ("train", "valid"))
    train_pieces, valid_pieces = parts["train"], parts["valid"] or parts["train"]
    print(f"{args.split}: {len(train_pieces)} train pieces, {args.threads} thread(s)")
    print("| model | context | precision | training pairs/s | pair cutting pairs/s |")
    print("| --- | ---: | --- | ---: | ---: |")
    for precision in args.precision:
        label = "bfloat16" if use_bfloat16(precision) else "float32"
        for model, context in CONFIGS:
            steps, cuts = [], []
            for run in range(args.runs):
                settings = TrainSettings(
                    model=model,
                    context_frames=context,
                    epoch_pairs=args.pairs,
                    max_epochs=1,
                    valid_pairs=100,
                    refine_cca_pairs=0,
                    bn_recalibration_pairs=0,
                    precision=precision,
                    threads=args.threads,
                    seed=run,
                )
                with tempfile.TemporaryDirectory() as out:
                    result = train(train_pieces, valid_pieces, settings, out, log=None)
                steps.append(result.throughput["train_pairs_per_s"])
                cuts.append(result.throughput["extract_pairs_per_s"])
            print(
                f"| {model} | {context} | {label} | {statistics.median(steps):.0f} "
                f"| {statistics.median(cuts):,.0f} |"
            )


if __name__ == "__main__":
    main()
