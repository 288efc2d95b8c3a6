"""Benchmark FluidSynth synthesis: load time and seconds per minute of audio, per soundfont.

Usage::

    .venv/bin/python bench/bench_synthesis.py [--repeats 5] [--minutes 1.0] [--full-load]

For each soundfont of ``soundfonts.txt``:

- ``load s``: loading the file and pinning its piano preset into a fresh
  :class:`~msmd_builder.stages.perform.fluidsynth.SoundfontCache` (dynamic sample loading, what a
  worker pays once), median of 3;
- ``full sfload s`` (with ``--full-load``): a plain ``sfload`` that reads and
  decodes every sample of the file (what the ``fluidsynth`` command line pays
  per file), one run;
- ``synth s/min``: :func:`~msmd_builder.stages.perform.fluidsynth.synthesize` of a synthetic dense
  piano texture (16th-note arpeggios, a melody and left-hand chords, about 13
  notes per second) of ``--minutes`` minutes, with the configured reverb and
  chorus (on), median of ``--repeats`` runs, divided by the audio's minutes;
- ``dry s/min``: the same with reverb and chorus off;
- ``onsets rec/prec``: :func:`~msmd_builder.stages.perform.onsets.verify_onsets` on that audio:
  the fraction of recorded onsets with a detected onset within one frame (50 ms),
  and the fraction of detected onsets near a recorded one.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from msmd_builder.core.errors import ToolNotFoundError  # noqa: E402
from msmd_builder.core.tables import empty_performed_events  # noqa: E402
from msmd_builder.core.units import SAMPLE_RATE  # noqa: E402
from msmd_builder.stages.perform.fluidsynth import (
    SoundfontCache,
    SynthSettings,
    fluidsynth_version,
    synthesize,
)
from msmd_builder.stages.perform.onsets import verify_onsets
from msmd_builder.stages.perform.realize import snap_to_render_grid
from msmd_builder.stages.perform.soundfonts import load_soundfonts, locate  # noqa: E402


def dense_texture(minutes: float) -> np.ndarray:
    """A dense, deterministic piano texture at 120 bpm, ``minutes`` long."""
    end = 60.0 * minutes
    chords = [(48, 52, 55), (45, 48, 52), (41, 45, 48), (43, 47, 50)]  # C Am F G
    rows: list[tuple[int, float, float]] = []
    t = 0.0
    bar = 0
    while t < end - 2.0:
        root = chords[bar % len(chords)]
        arpeggio = [p + 24 for p in root] + [p + 36 for p in root]
        for i in range(16):  # right hand: 16th notes, legato
            rows.append((arpeggio[i % len(arpeggio)], t + i * 0.125, t + i * 0.125 + 0.25))
        for i in range(4):  # melody: quarter notes
            rows.append((root[i % 3] + 48, t + i * 0.5, t + i * 0.5 + 0.45))
        for half in range(2):  # left hand: half-note chords
            rows.extend((p, t + half, t + half + 0.95) for p in root)
        t += 2.0
        bar += 1
    events = empty_performed_events(len(rows))
    for i, (pitch, on, off) in enumerate(rows):
        events[i]["event_id"] = i
        events[i]["pitch"] = pitch
        events[i]["velocity"] = 64
        events[i]["onset_sec"] = on
        events[i]["offset_sec"] = off
        events[i]["onset_whole"] = on / 2.0
    return snap_to_render_grid(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--full-load", action="store_true", help="also time a full sfload")
    parser.add_argument("--soundfonts", type=Path, default=None, help="soundfont list file")
    args = parser.parse_args()

    events = dense_texture(args.minutes)
    print(
        f"FluidSynth {fluidsynth_version()}, {platform.processor() or platform.machine()}, "
        f"{SAMPLE_RATE} Hz, {events.size} notes in {events['offset_sec'].max():.1f} s, "
        f"median of {args.repeats}"
    )
    header = ["soundfont", "preset", "load s", "synth s/min", "dry s/min", "onsets rec/prec"]
    if args.full_load:
        header.insert(3, "full sfload s")
    rows = [header]
    for spec in load_soundfonts(args.soundfonts):
        try:
            path = locate(spec)
        except ToolNotFoundError as exc:
            print(f"skipping {spec.name}: {exc}")
            continue
        preset = [(spec.bank, spec.program)]
        loads = []
        for _ in range(3):
            start = time.perf_counter()
            with SoundfontCache() as fresh:
                fresh.load(path, presets=preset)
                loads.append(time.perf_counter() - start)
        full = None
        if args.full_load:
            import fluidsynth

            synth = fluidsynth.Synth(samplerate=float(SAMPLE_RATE))
            start = time.perf_counter()
            synth.sfload(str(path), update_midi_preset=1)
            full = time.perf_counter() - start
            synth.delete()

        cache = SoundfontCache()
        cache.load(path, presets=preset)
        kwargs = dict(soundfont_path=path, bank=spec.bank, program=spec.program, cache=cache)
        per_minute = {}
        audio = None
        for label, settings in (
            ("wet", SynthSettings()),
            ("dry", SynthSettings(reverb=False, chorus=False)),
        ):
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                rendered = synthesize(events, settings=settings, **kwargs)
                times.append(time.perf_counter() - start)
            minutes = rendered.size / SAMPLE_RATE / 60.0
            per_minute[label] = statistics.median(times) / minutes
            if label == "wet":
                audio = rendered
        cache.close()
        check = verify_onsets(audio, events)
        precision = check.n_detected_matched / max(check.n_detected, 1)
        row = [
            spec.name,
            f"{spec.bank}:{spec.program}",
            f"{statistics.median(loads):.2f}",
            f"{per_minute['wet']:.3f}",
            f"{per_minute['dry']:.3f}",
            f"{check.fraction_within_frame:.3f} / {precision:.3f}",
        ]
        if args.full_load:
            row.insert(3, f"{full:.2f}")
        rows.append(row)

    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print(
            "  ".join(
                c.ljust(w) if j < 2 else c.rjust(w)
                for j, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
