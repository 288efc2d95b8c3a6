"""Measure the recording aligner on known-truth recordings, beside a plain chroma DTW.

Usage::

    .venv/bin/python bench/bench_recordings.py --mutopia-root ../shared/mutopia \\
        --work-dir /tmp/bench-recordings [--pieces 40] [--repeat-pieces 20] [--seed 0]
    .venv/bin/python bench/bench_recordings.py ... --long PIECE_ID [--minutes 20]

Pieces: the solo keyboard pieces of the corpus in a fixed pseudo-random order
(SHA-256 of the piece id), built through the align stage (cached
in ``--work-dir``), whose unfolded performance lasts 20 to 120 seconds, until
``--pieces`` are taken and ``--repeat-pieces`` of them have more than one
playing order (repeats or a written jump).

Per piece, recordings of the humanized recipe (tempo curve, final
ritardando, chord asynchrony, dynamics, sustain pedal; a tempo ratio drawn
from 0.8 to 1.25) on the held-out soundfont
(:mod:`msmd_builder.stages.recordings.simulate`), written to a file and
aligned with ``--repeats auto``:

- ``clean``: all repeats, no degradation (WAV, 22,050 Hz mono);
- ``degraded``: all repeats, pedalboard room reverb, microphone colouring,
  noise at 20-30 dB SNR, 1-4 s of silence, noise or applause before and after,
  a tuning offset of 15-50 cents (FLAC, 44,100 Hz stereo);
- ``skipped``: pieces with repeats: the playing order "no repeats" (or, without
  repeats, the written jump not taken), degraded likewise (Ogg Vorbis, 32,000 Hz
  mono);
- ``mismatch``: the degraded recording of the next piece aligned to this one
  (should be refused).

Printed per condition: share of notes whose onset is within 25, 50 and
100 ms of the truth, median absolute onset error, share of pieces whose
playing order was chosen right, and seconds per minute of recording (median
over recordings, wall clock and CPU; the ``clean`` recording of a piece is
the first, so its time includes rendering the references of every playing
order, which later recordings of the piece reuse).  The baseline -- librosa
chroma (STFT, hop 512, tuning estimated) of the deadpan reference of the
*true* playing order and of the recording, full DTW with cosine distance -- is
measured on the same files.  The costs of matching and mismatched recordings
are printed to calibrate ``MAX_COST``; notes are binned by confidence.

``--long PIECE_ID`` instead aligns one recording of about ``--minutes``
minutes of that piece (``--repeats unfolded``) and prints its time and the
process's peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from msmd_builder.core.cache import read_json
from msmd_builder.core.errors import MsmdError, RecordingMismatchError
from msmd_builder.core.units import SAMPLE_RATE
from msmd_builder.core.workdir import WorkDir
from msmd_builder.pipeline.run import run_pieces
from msmd_builder.pipeline.settings import build_settings
from msmd_builder.stages.align.playing_orders import orders_of_rendering
from msmd_builder.stages.corpus.index import select_keyboard
from msmd_builder.stages.corpus.scan import scan_into
from msmd_builder.stages.perform.fluidsynth import default_soundfont_cache, synthesize
from msmd_builder.stages.perform.npz import load_performance
from msmd_builder.stages.perform.plans import PerformancePlan, derive_seed
from msmd_builder.stages.perform.realize import realize, snap_to_render_grid
from msmd_builder.stages.perform.soundfonts import find_soundfont, load_soundfonts, locate
from msmd_builder.stages.recordings.reference import ReferenceSettings
from msmd_builder.stages.recordings.simulate import (
    Degradation,
    humanized_plan,
    known_truth_recording,
)
from msmd_builder.stages.recordings.stage import RecordingSettings, align_recording
from msmd_builder.stages.score import ScoreResult

FORMATS = {
    "clean": ("wav", 22050, 1),
    "degraded": ("flac", 44100, 2),
    "skipped": ("ogg", 32000, 1),
}


def write_audio(path: Path, audio: np.ndarray, rate: int, channels: int) -> None:
    """Write mono 22,050 Hz audio at another rate and channel count."""
    import soundfile
    import soxr

    signal = soxr.resample(audio, SAMPLE_RATE, rate) if rate != SAMPLE_RATE else audio
    if channels == 2:  # a slightly different second channel
        signal = np.stack([signal, 0.9 * signal], axis=1)
    # In blocks: libvorbis puts a buffer of the whole write on the stack (xiph/vorbis#99),
    # so one long write to Ogg Vorbis overflows it.
    with soundfile.SoundFile(str(path), "w", rate, channels) as handle:
        for start in range(0, len(signal), 1 << 14):
            handle.write(signal[start : start + (1 << 14)])


def select(work: WorkDir, root: Path, n_pieces: int, n_repeat: int) -> list:
    """Build pieces in the bench's order until enough are usable; return (piece_dir, orders)."""
    entries = scan_into(work, root, progress=False, if_changed=True)
    ranked = sorted(
        select_keyboard(entries), key=lambda e: derive_seed("recordings-bench", e.piece_id)
    )
    settings = build_settings(work.root, root, until="align")
    chosen: list = []
    with_orders = 0
    position = 0
    while (len(chosen) < n_pieces or with_orders < n_repeat) and position < len(ranked):
        batch = ranked[position : position + 16]
        position += len(batch)
        outcomes = run_pieces(batch, settings, workers=2)
        for outcome in outcomes:
            if outcome.status == "failed":
                continue
            piece_dir = work.piece(outcome.piece_id)
            score = ScoreResult.from_dict(read_json(piece_dir.score_record))
            noteheads, _ = score.load()
            try:
                orders = orders_of_rendering(
                    noteheads,
                    piece_dir.render,
                    list(score.render.midi_files),
                    rendered=score.render.repeats,
                )
            except MsmdError:
                continue
            length = float(orders[0].events["offset_sec"].max())
            if not 20.0 <= length <= 120.0:
                continue
            several = len(orders) > 1
            if len(chosen) >= n_pieces and not several:
                continue
            if len(chosen) >= n_pieces and with_orders >= n_repeat:
                break
            chosen.append((piece_dir, orders))
            with_orders += several
    return chosen


def reference_audio(order_events: np.ndarray, piece_id: str, cache) -> np.ndarray:  # noqa: ANN001
    """The deadpan reference of an order, as the aligner renders it (for the baseline)."""
    settings = ReferenceSettings()
    spec = find_soundfont(load_soundfonts(), settings.soundfont)
    plan = PerformancePlan(f"{piece_id}__reference", piece_id, spec.name, 1.0, None, None)
    events = snap_to_render_grid(realize(plan, order_events))
    audio = synthesize(
        events,
        soundfont_path=locate(spec),
        bank=spec.bank,
        program=spec.program,
        settings=settings.synth,
        cache=cache,
    )
    return audio, events


def baseline(reference: np.ndarray, ref_onsets: np.ndarray, recording: np.ndarray) -> np.ndarray:
    """Plain chroma DTW (librosa): map reference onsets to the recording."""
    import librosa

    hop = 512
    longest = max(len(reference), len(recording)) / hop
    while longest > 6000:  # keep each full DTW matrix under about 300 MB
        hop *= 2
        longest /= 2
    chroma_ref = librosa.feature.chroma_stft(y=reference, sr=SAMPLE_RATE, hop_length=hop)
    chroma_rec = librosa.feature.chroma_stft(y=recording, sr=SAMPLE_RATE, hop_length=hop)
    # Silent frames have all-zero chroma, whose cosine distance is undefined.
    chroma_ref, chroma_rec = chroma_ref + 1e-6, chroma_rec + 1e-6
    _, path = librosa.sequence.dtw(X=chroma_ref, Y=chroma_rec, metric="cosine")
    path = path[::-1]
    return np.interp(ref_onsets * SAMPLE_RATE / hop, path[:, 0], path[:, 1]) * hop / SAMPLE_RATE


def summarize(errors: list[np.ndarray]) -> dict:
    if not errors:
        return {}
    e = np.concatenate(errors)
    return {
        "notes": int(e.size),
        "within_25ms": round(float(np.mean(e <= 0.025)), 4),
        "within_50ms": round(float(np.mean(e <= 0.05)), 4),
        "within_100ms": round(float(np.mean(e <= 0.1)), 4),
        "median_ms": round(1000 * float(np.median(e)), 1),
        "pieces_95_within_50ms": round(
            float(np.mean([np.mean(x <= 0.05) >= 0.95 for x in errors])), 4
        ),
    }


def run_long(args: argparse.Namespace) -> None:
    """Record about ``--minutes`` of a piece, then align it in a fresh process and measure it."""
    import subprocess

    work = WorkDir(args.work_dir)
    piece_dir = work.piece(args.long)
    path = Path(args.work_dir) / "long-recording.flac"
    if not path.is_file():
        score = ScoreResult.from_dict(read_json(piece_dir.score_record))
        noteheads, _ = score.load()
        order = orders_of_rendering(
            noteheads,
            piece_dir.render,
            list(score.render.midi_files),
            rendered=score.render.repeats,
        )[0]
        length = float(order.events["offset_sec"].max())
        plan = humanized_plan(args.long, tempo_ratio=length / (60.0 * args.minutes), seed=1)
        audio, _ = known_truth_recording(
            order.events,
            plan,
            Degradation(),
            soundfonts=load_soundfonts(),
            cache=default_soundfont_cache(),
        )
        write_audio(path, audio, 44100, 2)
    # The aligner alone in its own process, so its peak memory is its own.
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--align-long",
            str(path),
            "--long",
            args.long,
            "--mutopia-root",
            str(args.mutopia_root),
            "--work-dir",
            str(args.work_dir),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(child.stdout.strip() + f"; peak RSS of the aligning process {peak / 1024:.0f} MiB")


def align_long(args: argparse.Namespace) -> None:
    """Align the long recording (``--repeats unfolded``) and print its time."""
    piece_dir = WorkDir(args.work_dir).piece(args.long)
    started, cpu = time.perf_counter(), time.process_time()
    result = align_recording(
        piece_dir,
        args.align_long,
        RecordingSettings(repeats="unfolded"),
        register=False,
        force=True,
    )
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    minutes = result.duration_sec / 60
    print(
        f"{args.long}: {minutes:.1f} min recording aligned in {wall:.1f} s wall, {cpu:.1f} s CPU "
        f"({wall / minutes:.2f} / {cpu / minutes:.2f} s per minute); steps (wall s) "
        + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutopia-root", type=Path, required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--pieces", type=int, default=40)
    parser.add_argument("--repeat-pieces", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="Also write the figures as JSON here.")
    parser.add_argument("--long", metavar="PIECE_ID")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--align-long", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.align_long:
        align_long(args)
        return
    if args.long:
        run_long(args)
        return

    work = WorkDir(args.work_dir)
    pieces = select(work, args.mutopia_root, args.pieces, args.repeat_pieces)
    soundfonts = load_soundfonts()
    cache = default_soundfont_cache()
    scratch = Path(args.work_dir) / "bench-recordings"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    rng = np.random.default_rng(args.seed)
    errors: dict[str, dict[str, list]] = {}
    chosen_right: dict[str, list[bool]] = {}
    speed: dict[str, dict[str, list]] = {}
    matched_costs: list[float] = []
    mismatch: list[tuple[str, float, bool]] = []
    confidence_rows: list[tuple[float, float]] = []
    recordings: dict[str, tuple] = {}
    print(
        f"{len(pieces)} pieces, {sum(len(o) > 1 for _, o in pieces)} with more than one "
        "playing order",
        flush=True,
    )
    for index, (piece_dir, orders) in enumerate(pieces):
        piece_id = piece_dir.piece_id
        shutil.rmtree(piece_dir.recordings, ignore_errors=True)  # cold references
        ratio = float(rng.uniform(0.8, 1.25))
        degradation = Degradation.draw(rng)
        conditions = [("clean", orders[0], Degradation()), ("degraded", orders[0], degradation)]
        if len(orders) > 1:
            skipped = next(
                (o for o in orders if not any(o.repeats_taken) and o.repeats_taken), None
            )
            conditions.append(("skipped", skipped or orders[1], Degradation.draw(rng)))
        for condition, order, degrade in conditions:
            plan = humanized_plan(
                piece_id, tempo_ratio=ratio, seed=derive_seed(args.seed, piece_id)
            )
            audio, truth = known_truth_recording(
                order.events, plan, degrade, soundfonts=soundfonts, cache=cache
            )
            suffix, rate, channels = FORMATS[condition]
            path = scratch / f"{piece_id}-{condition}.{suffix}"
            write_audio(path, audio, rate, channels)
            if condition == "degraded":
                recordings[piece_id] = (path, audio)
            started, cpu = time.perf_counter(), time.process_time()
            try:
                result = align_recording(
                    piece_dir, path, RecordingSettings(), register=False, force=True
                )
            except RecordingMismatchError as exc:
                print(f"  {piece_id} {condition}: refused: {exc}", flush=True)
                chosen_right.setdefault(condition, []).append(False)
                continue
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            minutes = result.duration_sec / 60
            speed.setdefault(condition, {"wall": [], "cpu": []})
            speed[condition]["wall"].append(wall / minutes)
            speed[condition]["cpu"].append(cpu / minutes)
            matched_costs.append(result.summary["cost"])
            right = result.summary["playing_order"] == order.name
            chosen_right.setdefault(condition, []).append(right)
            data = load_performance(result.path)
            ours = errors.setdefault(condition, {"ours": [], "baseline": []})
            if right:
                err = np.abs(data["events"]["onset_sec"] - truth["onset_sec"])
                ours["ours"].append(err)
                confidence_rows.extend(zip(data["confidence"].tolist(), err.tolist(), strict=True))
            else:
                print(
                    f"  {piece_id} {condition}: chose {result.summary['playing_order']!r}, "
                    f"truth {order.name!r}; costs {result.report()['costs']}",
                    flush=True,
                )
            ref_audio, ref_events = reference_audio(order.events, piece_id, cache)
            started = time.perf_counter()
            estimate = baseline(ref_audio, ref_events["onset_sec"], audio)
            speed.setdefault(f"{condition} (baseline)", {"wall": [], "cpu": []})
            speed[f"{condition} (baseline)"]["wall"].append(
                (time.perf_counter() - started) / minutes
            )
            ours["baseline"].append(np.abs(estimate - truth["onset_sec"]))
            if condition != "degraded":
                path.unlink()
        print(
            f"[{index + 1}/{len(pieces)}] {piece_id}: "
            + ", ".join(
                f"{c} {np.mean(errors[c]['ours'][-1] <= 0.05):.3f}"
                for c, *_ in conditions
                if c in errors and errors[c]["ours"]
            ),
            flush=True,
        )
    # Mismatch: each degraded recording against the next piece.
    ids = list(recordings)
    for i, piece_id in enumerate(ids):
        other = work.piece(ids[(i + 1) % len(ids)])
        path, _ = recordings[piece_id]
        try:
            result = align_recording(other, path, RecordingSettings(), register=False, force=True)
            mismatch.append((piece_id, result.summary["cost"], False))
        except RecordingMismatchError as exc:
            cost = min(o["cost"] for o in json.loads(exc.detail))
            mismatch.append((piece_id, cost, True))
        path.unlink()

    figures = {"conditions": {}, "speed": {}, "costs": {}}
    print()
    print(
        "| condition | method | notes | <= 25 ms | <= 50 ms | <= 100 ms | median ms | order right |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for condition, methods in errors.items():
        for method, errs in methods.items():
            stats = summarize(errs)
            right = chosen_right.get(condition, [])
            order_share = (
                f"{np.mean(right):.3f} ({sum(right)}/{len(right)})" if method == "ours" else "-"
            )
            figures["conditions"][f"{condition}/{method}"] = {**stats, "order_right": order_share}
            print(
                f"| {condition} | {method} | {stats.get('notes', 0)} | {stats.get('within_25ms')} "
                f"| {stats.get('within_50ms')} | {stats.get('within_100ms')} "
                f"| {stats.get('median_ms')} | {order_share} |"
            )
    print()
    print("| condition | s/min wall (median) | s/min CPU (median) | max wall |")
    print("| --- | ---: | ---: | ---: |")
    for condition, values in speed.items():
        wall = statistics.median(values["wall"])
        cpu = statistics.median(values["cpu"]) if values["cpu"] else float("nan")
        figures["speed"][condition] = {"wall": round(wall, 3), "cpu": round(cpu, 3)}
        print(f"| {condition} | {wall:.2f} | {cpu:.2f} | {max(values['wall']):.2f} |")
    refused = [m for m in mismatch if m[2]]
    print()
    print(
        f"matching recordings: cost median {np.median(matched_costs):.4f}, max "
        f"{max(matched_costs):.4f}; mismatched: {len(refused)}/{len(mismatch)} refused, cost min "
        f"{min(m[1] for m in mismatch):.4f}, median {np.median([m[1] for m in mismatch]):.4f}"
    )
    figures["costs"] = {
        "matched": sorted(round(c, 4) for c in matched_costs),
        "mismatched": sorted(round(m[1], 4) for m in mismatch),
        "refused": len(refused),
    }
    conf = np.array(confidence_rows)
    print()
    print("| confidence | notes | <= 50 ms |")
    print("| --- | ---: | ---: |")
    for lo, hi in ((0.0, 0.5), (0.5, 0.9), (0.9, 1.01)):
        rows = conf[(conf[:, 0] >= lo) & (conf[:, 0] < hi)] if len(conf) else conf
        share = f"{np.mean(rows[:, 1] <= 0.05):.3f}" if len(rows) else "-"
        print(f"| [{lo}, {min(hi, 1.0)}] | {len(rows)} | {share} |")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
