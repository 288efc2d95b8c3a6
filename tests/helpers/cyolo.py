"""A loader that follows the conventions of ``CPJKU/cyolo_score_following`` exactly.

Written for the tests from what ``cyolo_score_following/utils/data_utils.py``
(``load_piece``, ``load_sequences``) and ``dataset.py`` (``load_dataset``) do
with a piece's files, without their torch, cv2 and librosa imports:

* ``np.load(<name>.npz, allow_pickle=True)``; ``sheets``, ``coords``,
  ``systems``, ``bars`` as lists, ``synthesized.item()``;
* pages padded to a square with white (255), the width padded by
  ``|h - w| // 2`` on the left, every ``note_x`` > 0 and every system and bar
  ``x`` moved by that pad;
* the ``<name>.wav`` signal at 22,050 Hz;
* onset frames ``int(onset * FPS)`` with ``FPS = 22050 / 1102`` (their hop is
  1,102 samples, not 1,102.5);
* per distinct onset frame: the most common ``system_idx``, ``page_nr`` and
  ``bar_idx`` of its entries (``collections.Counter.most_common``, first seen
  on a tie), ``note_x`` the mean over the entries on that system, ``note_y``
  the system's ``y`` (-1 when ``note_x`` is not > 0);
* positions between onsets from ``scipy.interpolate.interp1d(kind="previous")``
  filled with the first and last onset's values outside;
* ``n_frames = ceil(FPS * n_samples / 22050)`` frames per performance.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 22050
HOP_SIZE = 1102
FPS = SAMPLE_RATE / HOP_SIZE


@dataclass
class CyoloPiece:
    padded_scores: np.ndarray
    scores: np.ndarray
    onsets: np.ndarray
    coords: np.ndarray  # per onset: note_y, note_x, system_idx, bar_idx, page_nr
    bars: list[dict[str, Any]]
    systems: list[dict[str, Any]]
    interpolate: Any
    signal: np.ndarray
    pad: int
    synthesized: bool

    @property
    def n_frames(self) -> int:
        return int(np.ceil(FPS * self.signal.shape[0] / SAMPLE_RATE))


def load_piece(path: Path, name: str) -> CyoloPiece:
    import soundfile
    from scipy import interpolate

    data = np.load(path / f"{name}.npz", allow_pickle=True)
    scores = data["sheets"]
    coords = [dict(c) for c in data["coords"]]
    systems = [dict(s) for s in data["systems"]]
    bars = [dict(b) for b in data["bars"]]
    synthesized = data["synthesized"].item()
    _, height, width = scores.shape
    difference = abs(height - width)
    pad = difference // 2
    padded = np.pad(
        scores, ((0, 0), (0, 0), (pad, difference - pad)), mode="constant", constant_values=255
    )
    signal, rate = soundfile.read(str(path / f"{name}.wav"), dtype="float32")
    assert rate == SAMPLE_RATE
    for entry in coords:
        if entry["note_x"] > 0:
            entry["note_x"] += pad
        entry["onset"] = int(entry["onset"] * FPS)
    for box in systems + bars:
        box["x"] += pad
    onsets = np.unique(np.asarray([c["onset"] for c in coords], dtype=np.int64))
    rows = []
    for onset in onsets:
        entries = [c for c in coords if c["onset"] == onset]
        system = int(Counter(c["system_idx"] for c in entries).most_common(1)[0][0])
        xs = np.asarray([c["note_x"] for c in entries])
        on_system = np.asarray([c["system_idx"] for c in entries]) == system
        note_x = float(np.mean(xs[on_system]))
        page = int(Counter(c["page_nr"] for c in entries).most_common(1)[0][0])
        bar = int(Counter(c["bar_idx"] for c in entries).most_common(1)[0][0])
        note_y = systems[system]["y"] if note_x > 0 else -1.0
        rows.append([note_y, note_x, system, bar, page])
    table = np.asarray(rows)
    interp = interpolate.interp1d(
        onsets,
        table.T,
        kind="previous",
        bounds_error=False,
        fill_value=(table[0, :], table[-1, :]),
    )
    return CyoloPiece(
        padded, scores, onsets, table, bars, systems, interp, signal, pad, synthesized
    )
