"""Benchmark MSMD's spectrogram: seconds of computation per minute of audio, peak memory.

Usage: ``python bench/bench_spectrogram.py [--repeats 5] [--minutes 1 5 10]``.

Times are the median of ``--repeats`` runs on random int16 audio at 22,050 Hz (the
dtype FluidSynth renderings arrive in).  Peak memory is measured in a separate,
untimed run with ``tracemalloc`` (numpy's allocations are traced), so it counts
what the call allocates on top of its input; the input itself is listed too.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time
import tracemalloc

import numpy as np

from msmd_builder.core.units import SAMPLE_RATE
from msmd_builder.stages.perform.spectrogram import compute_spectrogram, msmd_filterbank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0, 10.0])
    args = parser.parse_args()

    msmd_filterbank()  # build the cached filterbank outside the timings
    rng = np.random.default_rng(0)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(
        f"{'audio min':>9} {'frames':>7} {'median s':>9} {'s per audio min':>15} "
        f"{'peak MiB':>9} {'input MiB':>9}"
    )
    for minutes in args.minutes:
        n = int(minutes * 60 * SAMPLE_RATE)
        audio = rng.integers(-20000, 20000, size=n, dtype=np.int16)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            spec = compute_spectrogram(audio)
            times.append(time.perf_counter() - t0)
        median = statistics.median(times)
        tracemalloc.start()
        compute_spectrogram(audio)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"{minutes:9.1f} {spec.shape[1]:7d} {median:9.3f} {median / minutes:15.4f} "
            f"{peak / 2**20:9.1f} {audio.nbytes / 2**20:9.1f}"
        )
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max RSS: {rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
