"""Compression of shard datasets: size, write and read speed per filter, on built pieces.

Usage::

    .venv/bin/python bench/bench_compression.py --work-dir W [--pieces 12] [--seed 0]

Takes ``--pieces`` seeded-random pieces built through the perform stage in
``W`` (a dataset build's work directory), reads each one's test-role record
(page images and spectrograms, as the shards store them) and writes its
spectrograms and its pages, each kind on its own, to an in-memory HDF5 file
with every candidate filter, at the shards' chunk shapes:

- ``gzip-N`` (deflate level N; byte shuffle for spectrograms, as the shards),
- ``lzf`` (h5py's own; shuffle for spectrograms),
- ``blosc-zstd-N`` and ``zstd-N`` when ``hdf5plugin`` is installed (readers
  then need it too: ``pip install hdf5plugin`` and ``import hdf5plugin``).

Printed per filter and kind: total bytes against the raw bytes, write MB/s and
read MB/s of raw data (median of ``--repeats`` timings per piece, summed over
pieces), so size and speed can be weighed in one table.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from msmd_builder.core.workdir import WorkDir  # noqa: E402
from msmd_builder.dataset.built import BuiltPiece  # noqa: E402
from msmd_builder.dataset.manifest import (  # noqa: E402
    LIBVER,
    PAGE_CHUNK_ROWS,
    SPECTROGRAM_CHUNK_FRAMES,
)

_names = itertools.count()


def filters() -> dict[str, dict]:
    """Return filter name -> h5py ``create_dataset`` options (without shuffle)."""
    options: dict[str, dict] = {
        f"gzip-{level}": {"compression": "gzip", "compression_opts": level}
        for level in (1, 4, 6, 9)
    }
    options["lzf"] = {"compression": "lzf"}
    try:
        import hdf5plugin
    except ImportError:
        print("hdf5plugin is not installed: Blosc and Zstd are not measured")
        return options
    for level in (3, 5, 9):
        options[f"blosc-zstd-{level}"] = dict(
            hdf5plugin.Blosc(cname="zstd", clevel=level, shuffle=hdf5plugin.Blosc.NOSHUFFLE)
        )
        options[f"zstd-{level}"] = dict(hdf5plugin.Zstd(clevel=level))
    return options


def measure(arrays: list[np.ndarray], chunks, options: dict, shuffle: bool, repeats: int):  # noqa: ANN001
    """Return (stored bytes, write seconds, read seconds) of writing ``arrays`` to one file."""
    writes, reads = [], []
    size = 0
    for _ in range(repeats):
        name = f"bench-compression-{next(_names)}.h5"
        with h5py.File(name, "w", driver="core", backing_store=False, libver=LIBVER) as handle:
            started = time.perf_counter()
            for i, array in enumerate(arrays):
                handle.create_dataset(
                    str(i), data=array, chunks=chunks(array), shuffle=shuffle, **options
                )
            handle.flush()
            writes.append(time.perf_counter() - started)
            size = sum(handle[str(i)].id.get_storage_size() for i in range(len(arrays)))
            started = time.perf_counter()
            for i in range(len(arrays)):
                handle[str(i)][()]
            reads.append(time.perf_counter() - started)
    return size, statistics.median(writes), statistics.median(reads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--pieces", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = WorkDir(args.work_dir)
    built = sorted(
        p.name for p in work.pieces.iterdir() if (p / "perform" / "perform.json").is_file()
    )
    chosen = random.Random(args.seed).sample(built, min(args.pieces, len(built)))
    spectrograms: list[np.ndarray] = []
    pages: list[np.ndarray] = []
    for piece_id in chosen:
        record = BuiltPiece.open(work.piece(piece_id)).record("train")
        spectrograms += [np.asarray(p.spectrogram, dtype=np.float32) for p in record.performances]
        pages += list(record.pages)
    kinds = {
        "spectrograms": (
            spectrograms,
            lambda a: (a.shape[0], max(1, min(a.shape[1], SPECTROGRAM_CHUNK_FRAMES))),
            True,
        ),
        "pages": (pages, lambda a: (min(PAGE_CHUNK_ROWS, a.shape[0]), a.shape[1]), False),
    }
    print(
        f"{len(chosen)} pieces: {len(spectrograms)} spectrograms "
        f"({sum(a.nbytes for a in spectrograms) / 2**20:.1f} MiB raw), {len(pages)} pages "
        f"({sum(a.nbytes for a in pages) / 2**20:.1f} MiB raw)"
    )
    print("| kind | filter | stored MiB | of raw | write MB/s | read MB/s |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    candidates = filters()
    candidates["none"] = {}
    for kind, (arrays, chunks, shuffle) in kinds.items():
        raw = sum(a.nbytes for a in arrays)
        for name, options in candidates.items():
            size, write, read = measure(
                arrays, chunks, options, shuffle and name != "none", args.repeats
            )
            print(
                f"| {kind} | {name} | {size / 2**20:.1f} | {100 * size / raw:.1f} % | "
                f"{raw / write / 1e6:.0f} | {raw / read / 1e6:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
