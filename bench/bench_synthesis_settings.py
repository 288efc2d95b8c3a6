"""What FluidSynth's own cost settings save, and how much they change the spectrograms.

Usage::

    .venv/bin/python bench/bench_synthesis_settings.py --work-dir W [--pieces 8] [--repeats 3]

Takes ``--pieces`` seeded-random pieces of a build's work directory (built
through align), and for each, per soundfont of ``soundfonts.txt``, the first
of its performance plans (seed 0, MSMD's recipe) that uses that soundfont.
Every plan is synthesized with MSMD's settings (the default) and with each
variant below, ``--repeats`` times each in rotated order; the spectrogram of
each variant's audio is compared with the default's.  Prints per variant:
synthesis seconds per audio minute (median over repeats, summed over the
renderings), the ratio to the default measured in this run, and the change of
the log spectrogram (``log10(1 + |X|)``, 92 bands at 20 fps): mean absolute
difference, its 99th percentile and maximum, and the mean of the default's
spectrograms for scale, and whether the audio is bit for bit MSMD's.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from msmd_builder.core.cache import read_json  # noqa: E402
from msmd_builder.core.workdir import WorkDir  # noqa: E402
from msmd_builder.stages.align.stage import AlignResult  # noqa: E402
from msmd_builder.stages.perform.fluidsynth import SynthSettings, synthesize  # noqa: E402
from msmd_builder.stages.perform.plans import plan_piece  # noqa: E402
from msmd_builder.stages.perform.realize import _as_event_table, realize_on_grid  # noqa: E402
from msmd_builder.stages.perform.soundfonts import find_soundfont, load_soundfonts, locate  # noqa: E402
from msmd_builder.stages.perform.spectrogram import compute_spectrogram  # noqa: E402

MSMD = SynthSettings()
VARIANTS = {
    "msmd (default)": MSMD,
    "interpolation linear": replace(MSMD, interpolation="linear"),
    "interpolation none": replace(MSMD, interpolation="none"),
    "interpolation 7th-order": replace(MSMD, interpolation="7th-order"),
    "polyphony 64": replace(MSMD, polyphony=64),
    "chorus off": replace(MSMD, chorus=False),
    "reverb off": replace(MSMD, reverb=False),
    "reverb and chorus off": replace(MSMD, reverb=False, chorus=False),
    "linear, chorus off": replace(MSMD, interpolation="linear", chorus=False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--pieces", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    work = WorkDir(args.work_dir)
    folders = sorted((args.work_dir / "pieces").iterdir())
    built = [p.name for p in folders if work.piece(p.name).align_record.is_file()]
    sample = random.Random(args.seed).sample(built, min(args.pieces, len(built)))
    specs = load_soundfonts()
    jobs = []  # (label, performed, pedal, spec)
    for piece_id in sample:
        aligned = AlignResult.from_dict(read_json(work.piece(piece_id).align_record))
        table = _as_event_table(aligned.load())
        if table.size == 0:
            continue
        plans, _ = plan_piece(piece_id, soundfonts=specs, seed=0)
        first_of_font = {}
        for plan in plans:
            first_of_font.setdefault(plan.soundfont, plan)
        for plan in first_of_font.values():
            performance_id = plan.performance_id
            performed, pedal = realize_on_grid(plan, table)
            jobs.append((performance_id, performed, pedal, find_soundfont(specs, plan.soundfont)))

    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    spectra: dict[str, list[np.ndarray]] = {name: [] for name in VARIANTS}
    minutes = 0.0
    names = list(VARIANTS)
    identical: dict[str, bool] = {name: True for name in VARIANTS}
    for label, performed, pedal, spec in jobs:
        path = locate(spec)
        # Load the soundfont (once per worker in a build) before timing anything.
        synthesize(performed[:1], soundfont_path=path, bank=spec.bank, program=spec.program)
        audio_of: dict[str, np.ndarray] = {}
        runs: dict[str, list[float]] = {name: [] for name in names}
        for repeat in range(args.repeats):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                audio = synthesize(
                    performed,
                    soundfont_path=path,
                    bank=spec.bank,
                    program=spec.program,
                    settings=VARIANTS[name],
                    pedal=pedal,
                )
                runs[name].append(time.perf_counter() - started)
                if repeat == 0:
                    spectra[name].append(compute_spectrogram(audio))
                    audio_of[name] = audio
        for name in names:
            identical[name] &= np.array_equal(audio_of[name], audio_of[names[0]])
        minutes += audio.size / 22050 / 60
        for name in names:
            seconds[name].append(statistics.median(runs[name]))
        print(f"  {label}: {audio.size / 22050:.1f} s of audio", flush=True)

    base = sum(seconds[names[0]])
    reference = np.concatenate([s.ravel() for s in spectra[names[0]]])
    print(
        f"{len(jobs)} renderings of {len(sample)} pieces, {minutes:.1f} audio minutes, "
        f"{args.repeats} runs each; mean log spectrogram value {reference.mean():.4f}"
    )
    print(
        "| settings | synthesis s per audio minute | / MSMD's | mean abs change | 99th pct | max "
        "| audio identical |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name in names:
        diff = np.abs(np.concatenate([s.ravel() for s in spectra[name]]) - reference)
        total = sum(seconds[name])
        print(
            f"| {name} | {total / minutes:.3f} | {total / base:.3f} | {diff.mean():.5f} | "
            f"{np.percentile(diff, 99):.4f} | {diff.max():.4f} | "
            f"{'yes' if identical[name] else 'no'} |"
        )


if __name__ == "__main__":
    main()
