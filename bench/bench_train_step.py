"""One training step of a model, in variants: threads, bfloat16 autocast, memory layout, compile.

Usage::

    .venv/bin/python bench/bench_train_step.py                     # the variants below
    .venv/bin/python bench/bench_train_step.py --variant '{"threads": 2, "bf16": true}'

Each variant runs in a fresh process: the 2018 model (or ``--model``), a
batch of 100 random sheet snippets (80 x 100) and audio excerpts (92 x
``--context``), the ranking loss, backward and Adam, as the training loop
does them; three warm-up steps (with ``compile``, the compilation), then the
median of ``steps`` timed steps.  It isolates the network's own cost from
batch cutting and data, which ``bench_train.py`` measures with the real loop.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VARIANTS = (
    {"threads": 2, "bf16": False},
    {"threads": 2, "bf16": True},
    {"threads": 1, "bf16": False},
    {"threads": 1, "bf16": True},
    {"threads": 2, "bf16": True, "channels_last": False},
    {"threads": 2, "bf16": False, "channels_last": False},
    {"threads": 2, "bf16": True, "compile": True},
    {"threads": 2, "bf16": False, "compile": True},
)

WORKER = r"""
import json, statistics, sys, time
import torch
from msmd_builder.train.loss import ranking_loss
from msmd_builder.train.models import build_model
from msmd_builder.train.runtime import autocast, configure
v = json.loads(sys.argv[1])
configure(torch.device("cpu"), v.get("threads", 2))
torch.manual_seed(0)
model = build_model(v["model"], v["context"])
model.train()
if v.get("compile"):
    model = torch.compile(model)
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
g = torch.Generator().manual_seed(1)
layout = torch.channels_last if v.get("channels_last", True) else torch.contiguous_format
sheets = torch.rand(100, 1, 80, 100, generator=g).contiguous(memory_format=layout)
audio = torch.rand(100, 1, 92, v["context"], generator=g).contiguous(memory_format=layout)
def step():
    with autocast(torch.device("cpu"), v.get("bf16", False)):
        x, y = model(sheets, audio)
    loss = ranking_loss(x.float(), y.float(), margin=0.7, symmetric=True)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
started = time.perf_counter()
for _ in range(3):
    step()
warm = time.perf_counter() - started
times = []
for _ in range(v.get("steps", 8)):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
rate = round(100 / statistics.median(times), 1)
print(json.dumps({**v, "warmup_s": round(warm, 1), "pairs_per_s": rate}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="2018")
    parser.add_argument("--context", type=int, default=42)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--variant", action="append", type=json.loads, default=[])
    args = parser.parse_args()
    print("| threads | bfloat16 | channels-last | torch.compile | warm-up s | pairs/s |")
    print("| ---: | --- | --- | --- | ---: | ---: |")
    for variant in args.variant or VARIANTS:
        settings = {"model": args.model, "context": args.context, "steps": args.steps, **variant}
        run = subprocess.run(
            [sys.executable, "-c", WORKER, json.dumps(settings)],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        got = json.loads(run.stdout.strip().splitlines()[-1])
        print(
            f"| {got['threads']} | {got.get('bf16', False)} | {got.get('channels_last', True)} "
            f"| {got.get('compile', False)} | {got['warmup_s']} | {got['pairs_per_s']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
