"""Align one recording of a built piece to its noteheads and store it as a performance.

:func:`align_recording` does, for one audio file:

1. decode it to 22,050 Hz mono (:func:`~msmd_builder.stages.recordings.audio.read_recording`),
   estimate its tuning and compute its synchronization features;
2. list the playing orders to try (:func:`~msmd_builder.stages.align.playing_orders.playing_orders`:
   all of them for ``repeats="auto"``, else one) and render each one's deadpan
   reference (:mod:`~msmd_builder.stages.recordings.reference`, cached);
3. keep the order whose reference matches best (lowest
   :func:`~msmd_builder.stages.recordings.sync.order_cost`), and refuse the
   recording when even that cost is above :attr:`RecordingSettings.max_cost`;
4. synchronize reference and recording with MrMsDTW
   (:func:`~msmd_builder.stages.recordings.sync.synchronize`) and carry every
   note's onset and offset from reference time to recording time along the
   path, with a confidence from the local cost;
5. write the recording as a performance file (``perform/<id>.npz``, the
   format of a synthesized one, plus ``recording_json`` and ``confidence``)
   with its audio (``perform/<id>.flac``), and list it in ``perform.json``.

The file is cached under a key of the recording's bytes, the performed notes,
the settings and the tool versions (:class:`~msmd_builder.core.cache.StageCache`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from msmd_builder.core.cache import StageCache, sha256_file, stable_key
from msmd_builder.core.errors import (
    ConfigError,
    RecordingMismatchError,
    ToolNotFoundError,
    UnreadableRecordingError,
)
from msmd_builder.core.tables import PEDAL_EVENT_DTYPE
from msmd_builder.core.units import SAMPLE_RATE, sec_to_frame
from msmd_builder.core.workdir import PieceDir
from msmd_builder.stages.align.playing_orders import PlayingOrder
from msmd_builder.stages.perform.fluidsynth import SoundfontCache
from msmd_builder.stages.perform.soundfonts import SoundfontSpec
from msmd_builder.stages.recordings.features import FEATURE_RATE
from msmd_builder.stages.recordings.reference import Reference, ReferenceSettings, reference_of
from msmd_builder.stages.recordings.sync import (
    Synchronization,
    SyncSettings,
    music_span,
    order_cost,
    synchronize,
)

__all__ = [
    "REPEATS_CHOICES",
    "MAX_COST",
    "METHOD",
    "RecordingSettings",
    "RecordingResult",
    "recording_id",
    "preflight",
    "align_recording",
]

#: ``--repeats`` choices: try every playing order, or take the build's own
#: (all repeats), or play every repeated passage once.
REPEATS_CHOICES = ("auto", "unfolded", "folded")
#: Highest :func:`order_cost` of a recording that matches its piece (calibrated
#: on the known-truth set, see ``docs/recordings.md``).
MAX_COST: float = 0.2
#: What aligned the recording, as stored with it.
METHOD = "synctoolbox MrMsDTW, chroma + DLNCO features at 50 fps"


@dataclass(frozen=True)
class RecordingSettings:
    """How recordings are aligned.

    Attributes
    ----------
    repeats : {'auto', 'unfolded', 'folded'}
        ``auto``: try every playing order (:func:`playing_orders`) and keep
        the best; ``unfolded``: the build's own order (all repeats, jumps as
        written); ``folded``: every repeated passage once (jumps as written).
        A piece built in printed order has that one order.
    reference : ReferenceSettings
        How references are rendered.
    sync : SyncSettings
        MrMsDTW settings.
    max_cost : float
        A recording whose best :func:`order_cost` is above this does not
        match the piece.
    """

    repeats: str = "auto"
    reference: ReferenceSettings = field(default_factory=ReferenceSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    max_cost: float = MAX_COST

    def __post_init__(self) -> None:
        if self.repeats not in REPEATS_CHOICES:
            raise ConfigError(
                f"repeats must be one of {', '.join(REPEATS_CHOICES)}, got {self.repeats!r}"
            )
        if not 0 < self.max_cost <= 1:
            raise ConfigError(f"max_cost must be in (0, 1], got {self.max_cost!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-friendly dict."""
        return {
            "repeats": self.repeats,
            "reference": self.reference.to_dict(),
            "sync": self.sync.to_dict(),
            "max_cost": self.max_cost,
        }


@dataclass(frozen=True)
class RecordingResult:
    """What :func:`align_recording` wrote.

    Attributes
    ----------
    performance_id : str
        ``<piece_id>__recording-<name>``.
    path : Path
        The performance file.
    audio_path : Path
        The recording at 22,050 Hz mono (16-bit FLAC), which the viewer plays.
    cache_key : str
        The performance file's key.
    summary : dict
        The stored ``recording_json``: the file, method, settings, tuning,
        the playing orders tried with their costs, the chosen one, the
        confidence statistics.
    plan : dict
        The performance's plan (soundfont ``"recording"``, measured tempo ratio).
    duration_sec : float
        Length of the recording.
    n_frames : int
        Spectrogram frames.
    skipped : bool
        True when an up-to-date file existed.
    seconds : dict
        Wall-clock seconds per step (empty when skipped).
    """

    performance_id: str
    path: Path
    audio_path: Path
    cache_key: str
    summary: dict[str, Any]
    plan: dict[str, Any]
    duration_sec: float
    n_frames: int
    skipped: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    def entry(self, role: str, align_key: str) -> dict[str, Any]:
        """Return the recording's entry in ``perform.json``.

        See :mod:`msmd_builder.stages.perform.listing`.
        """
        return {
            "performance_id": self.performance_id,
            "file": self.path.name,
            "audio": self.audio_path.name,
            "plan": self.plan,
            "cache_key": self.cache_key,
            "duration_sec": self.duration_sec,
            "n_frames": self.n_frames,
            "onset_fraction": None,
            "roles": [role],
            "align": align_key,
            "source": "recording",
            "recording": self.report(),
        }

    def report(self) -> dict[str, Any]:
        """Return what a build report shows of the recording."""
        summary = self.summary
        return {
            "file": summary["file"]["file"],
            "playing_order": summary["playing_order"],
            "cost": summary["cost"],
            "costs": {o["name"]: o["cost"] for o in summary["orders"]},
            "confidence_median": summary["confidence"]["median"],
            "confidence_below_half": summary["confidence"]["share_below_0.5"],
            "tuning_cents": summary["tuning_cents"],
            "tempo_ratio": self.plan["tempo_ratio"],
        }


def preflight() -> None:
    """Fail at once, with the fix, if the libraries the aligner needs are not installed.

    Raises
    ------
    ToolNotFoundError
        synctoolbox, librosa or soxr is missing (the ``recordings`` extra).
    """
    import importlib

    for module in ("synctoolbox", "librosa", "soxr"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ToolNotFoundError(
                f"aligning recordings needs {module}: install the recordings extra with "
                "`pip install -e '.[recordings]'` (or `make test`, which installs it)"
            ) from exc


def recording_id(piece_id: str, recording: str | os.PathLike[str]) -> str:
    """Return the performance id of a recording: ``<piece_id>__recording-<file stem>``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(recording).stem).strip("-.") or "audio"
    return f"{piece_id}__recording-{stem}"


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import librosa
    import scipy
    import soundfile
    import soxr

    from msmd_builder import __version__

    return {
        "msmd_builder": __version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "librosa": librosa.__version__,
        "synctoolbox": version("synctoolbox"),
        "soundfile": soundfile.__version__,
        "libsndfile": soundfile.__libsndfile_version__,
        "soxr": soxr.__version__,
    }


#: ``format_name`` of the cached playing orders (``recordings/orders.npz``).
ORDERS_FORMAT = "msmd-builder/recording-orders"
ORDERS_VERSION = 1


def _all_orders(piece_dir: PieceDir, align_key: str) -> list[PlayingOrder]:
    """Return every playing order of the built piece, cached beside its references.

    Building the orders re-reads LilyPond's performed log and scores every
    order against the noteheads (about a second for a two-minute piece, as
    long as the rest of an alignment); they change only with the alignment,
    so they are kept under ``recordings/orders.npz``, keyed by its cache key.
    """
    from msmd_builder import __version__
    from msmd_builder.core.cache import load_npz, read_json, save_npz
    from msmd_builder.stages.align import playing_orders
    from msmd_builder.stages.align.playing_orders import orders_of_rendering
    from msmd_builder.stages.perform.npz import read_header
    from msmd_builder.stages.score import ScoreResult

    path = piece_dir.recording_orders
    code = sha256_file(playing_orders.__file__)
    entry = StageCache.for_document(
        path,
        {"align": align_key, "msmd_builder": __version__, "playing_orders": code},
        format_name=ORDERS_FORMAT,
        format_version=ORDERS_VERSION,
    )
    if entry.lookup(reader=read_header) is not None:
        data = load_npz(path, format_name=ORDERS_FORMAT, format_version=ORDERS_VERSION)
        described = json.loads(str(data["orders_json"]))
        bounds = np.cumsum([0] + [d["n_events"] for d in described])
        return [
            PlayingOrder(
                name=d["name"],
                repeats_taken=tuple(d["repeats_taken"]),
                jumps_taken=bool(d["jumps_taken"]),
                events=data["events"][bounds[i] : bounds[i + 1]],
                jumps=tuple(d["jumps"]),
            )
            for i, d in enumerate(described)
        ]
    score = ScoreResult.from_dict(read_json(piece_dir.score_record))
    noteheads, _ = score.load()
    render = score.render
    orders = orders_of_rendering(
        noteheads, piece_dir.render, list(render.midi_files), rendered=render.repeats
    )
    save_npz(
        path,
        format_name=ORDERS_FORMAT,
        format_version=ORDERS_VERSION,
        cache_key=np.array(entry.key),
        orders_json=np.array(json.dumps([o.to_dict() for o in orders])),
        events=np.concatenate([o.events for o in orders]),
    )
    return orders


def _orders(piece_dir: PieceDir, align_key: str, repeats: str) -> list[PlayingOrder]:
    """Return the playing orders ``repeats`` asks to try."""
    orders = _all_orders(piece_dir, align_key)
    if repeats == "unfolded" or len(orders) == 1:
        return orders[:1]
    if repeats == "folded":
        return [o for o in orders if not any(o.repeats_taken) and o.jumps_taken][:1]
    return orders


def _confidence(local_cost: np.ndarray) -> np.ndarray:
    """Map the local alignment cost around a note to a confidence in [0, 1].

    The cost is the mean chroma distance plus DLNCO distance of the path within
    :attr:`SyncSettings.confidence_window_sec` of the note.  Notes placed
    within 50 ms of the truth had a median local cost of 0.27 (95 % below
    0.45) on degraded known-truth recordings; ``1.25 - cost``, clipped, gives
    them 0.8 to 1 and falls to 0 where the recording stops resembling the
    reference (``docs/recordings.md`` has the share of notes within 50 ms per
    confidence band).
    """
    return np.clip(1.25 - np.asarray(local_cost, dtype=np.float64), 0.0, 1.0).astype(np.float32)


def _map_events(
    reference: Reference, sync: Synchronization, duration_sec: float, *, window_sec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return the reference's events in recording seconds, and each note's confidence."""
    events = reference.events.copy()
    onset = sync.to_recording_sec(reference.feature_sec(events["onset_sec"]))
    offset = sync.to_recording_sec(reference.feature_sec(events["offset_sec"]))
    onset = np.clip(onset, 0.0, max(duration_sec - 1e-3, 0.0))
    offset = np.clip(np.maximum(offset, onset + 1e-3), 0.0, duration_sec)
    events["onset_sec"] = onset
    events["offset_sec"] = np.maximum(offset, onset)
    local = sync.local_cost(
        reference.feature_sec(reference.events["onset_sec"]), window_sec=window_sec
    )
    return events, _confidence(local)


def align_recording(
    piece_dir: PieceDir,
    recording: str | os.PathLike[str],
    settings: RecordingSettings | None = None,
    *,
    role: str = "test",
    force: bool = False,
    register: bool = True,
    soundfonts: Sequence[SoundfontSpec] | None = None,
    cache: SoundfontCache | None = None,
) -> RecordingResult:
    """Align a recording to a built piece and store it as one of its performances.

    Parameters
    ----------
    piece_dir : PieceDir
        A built piece: through the align stage, and the perform stage when
        the recording is to be listed (``register``).
    recording : path-like
        The audio file (WAV, FLAC, Ogg, MP3; any rate, mono or stereo).
    settings : RecordingSettings, optional
        Playing orders to try, reference, DTW, mismatch threshold.
    role : {'train', 'valid', 'test'}
        The split role the recording joins.
    force : bool
        Align again even if an up-to-date file exists.
    register : bool
        List the recording in ``perform.json`` (beside any listed before).
    soundfonts : sequence of SoundfontSpec, optional
        Default :func:`~msmd_builder.stages.perform.soundfonts.load_soundfonts`.
    cache : SoundfontCache, optional
        Default :func:`~msmd_builder.stages.perform.fluidsynth.default_soundfont_cache`.

    Returns
    -------
    RecordingResult

    Raises
    ------
    ToolNotFoundError
        The ``recordings`` extra is not installed.
    NotBuiltError
        The piece lacks its score, alignment or performances.
    RecordingError
        The file is unreadable, empty, silent, too long, or does not match
        the piece (:class:`~msmd_builder.core.errors.RecordingMismatchError`).
    """
    from msmd_builder.dataset.built import BuiltPiece, check_role
    from msmd_builder.stages.perform.fluidsynth import default_soundfont_cache
    from msmd_builder.stages.perform.listing import list_recordings
    from msmd_builder.stages.perform.npz import FORMAT_NAME, FORMAT_VERSION, read_header
    from msmd_builder.stages.perform.soundfonts import load_soundfonts

    check_role(role)
    preflight()
    settings = settings or RecordingSettings()
    built = BuiltPiece.open(piece_dir, need_performances=register)
    align_key = str(built.align["cache_key"])
    recording = Path(recording)
    if not recording.is_file():
        raise UnreadableRecordingError(f"{recording.name}: no such file")
    performance_id = recording_id(piece_dir.piece_id, recording)
    npz_path = piece_dir.performance(performance_id)
    flac_path = piece_dir.performance_audio(performance_id)
    key = stable_key(
        {
            "stage": "recording",
            "recording_sha256": sha256_file(recording),
            "performance_id": performance_id,
            "align": align_key,
            "settings": settings.to_dict(),
            "versions": _versions(),
        }
    )
    entry = StageCache(npz_path, FORMAT_NAME, FORMAT_VERSION, key)
    if entry.lookup(lambda _: [flac_path], force=force, reader=read_header) is not None:
        result = _result_from_file(npz_path, flac_path, key)
    else:
        specs = list(soundfonts) if soundfonts is not None else load_soundfonts()
        result = _align(
            piece_dir,
            recording,
            settings,
            performance_id=performance_id,
            key=key,
            soundfonts=specs,
            cache=cache if cache is not None else default_soundfont_cache(),
            align_key=align_key,
        )
    if register:
        list_recordings(piece_dir, [result.entry(role, align_key)], replace=False)
    return result


def _result_from_file(npz_path: Path, flac_path: Path, key: str) -> RecordingResult:
    with np.load(npz_path, allow_pickle=False) as data:
        return RecordingResult(
            performance_id=str(data["performance_id"]),
            path=npz_path,
            audio_path=flac_path,
            cache_key=key,
            summary=json.loads(str(data["recording_json"])),
            plan=json.loads(str(data["plan_json"])),
            duration_sec=float(data["duration_sec"]),
            n_frames=int(data["spectrogram"].shape[1]),
            skipped=True,
        )


def _align(
    piece_dir: PieceDir,
    recording: Path,
    settings: RecordingSettings,
    *,
    performance_id: str,
    key: str,
    soundfonts: Sequence[SoundfontSpec],
    cache: SoundfontCache,
    align_key: str,
) -> RecordingResult:
    from msmd_builder.stages.perform.npz import write_flac, write_performance
    from msmd_builder.stages.perform.plans import PerformancePlan
    from msmd_builder.stages.perform.spectrogram import compute_spectrogram
    from msmd_builder.stages.recordings.audio import read_recording
    from msmd_builder.stages.recordings.features import estimate_tuning_cents, sync_features

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    audio = read_recording(recording)
    seconds["read"] = time.perf_counter() - started

    started = time.perf_counter()
    tuning = estimate_tuning_cents(audio.audio)
    features = sync_features(audio.audio, tuning_cents=tuning)
    seconds["features"] = time.perf_counter() - started

    started = time.perf_counter()
    # The references are keyed by their content (events, settings, tool versions),
    # so aligning again (``force``) reuses them; only a stale or damaged one is redone.
    references = [
        reference_of(order, piece_dir, settings.reference, soundfonts=soundfonts, cache=cache)
        for order in _orders(piece_dir, align_key, settings.repeats)
    ]
    seconds["references"] = time.perf_counter() - started

    started = time.perf_counter()
    pad = int(round(settings.reference.pad_sec * FEATURE_RATE))
    start, stop = music_span(references[0].features.chroma, pad, features.chroma)
    margin = FEATURE_RATE // 2
    music = features.chroma[:, max(0, start - margin) : stop + margin]
    costs = [
        order_cost(r.features.chroma[:, pad : r.features.n_frames - pad], music) for r in references
    ]
    best = int(np.argmin(costs))
    reference = references[best]
    seconds["order"] = time.perf_counter() - started
    tried = [
        {"name": r.order.name, "cost": round(float(c), 5), "n_events": int(len(r.events))}
        for r, c in zip(references, costs, strict=True)
    ]
    if not costs[best] <= settings.max_cost:
        raise RecordingMismatchError(
            f"{recording.name} does not match {piece_dir.piece_id}: its best playing order "
            f"({reference.order.name}) has normalized cost {costs[best]:.3f}, above "
            f"{settings.max_cost:.3f}",
            detail=json.dumps(tried),
        )

    started = time.perf_counter()
    sync = synchronize(reference.features, features, settings.sync)
    events, confidence = _map_events(
        reference, sync, audio.duration_sec, window_sec=settings.sync.confidence_window_sec
    )
    seconds["sync"] = time.perf_counter() - started

    started = time.perf_counter()
    spectrogram = np.asarray(compute_spectrogram(audio.audio), dtype=np.float32)
    onset_frame = np.asarray(sec_to_frame(events["onset_sec"]), dtype=np.int64)
    seconds["spectrogram"] = time.perf_counter() - started

    span = float(events["onset_sec"].max() - events["onset_sec"].min())
    score_span = float(reference.events["onset_sec"].max() - reference.events["onset_sec"].min())
    tempo_ratio = round(score_span / span, 4) if span > 0 and score_span > 0 else 1.0
    summary = {
        "source": "recording",
        "file": audio.describe(),
        "method": METHOD,
        "settings": settings.to_dict(),
        "versions": _versions(),
        "tuning_cents": round(tuning, 1),
        "chroma_shift": sync.chroma_shift,
        "repeats": settings.repeats,
        "orders": tried,
        "playing_order": reference.order.name,
        "order": reference.order.to_dict(),
        "cost": round(float(costs[best]), 5),
        "fine_cost": round(sync.normalized_cost, 5),
        "confidence": {
            "median": round(float(np.median(confidence)), 4),
            "share_below_0.5": round(float(np.mean(confidence < 0.5)), 4),
        },
        "music_sec": [
            round(float(events["onset_sec"].min()), 3),
            round(float(events["offset_sec"].max()), 3),
        ],
    }
    plan = PerformancePlan(
        performance_id=performance_id,
        piece_id=piece_dir.piece_id,
        soundfont="recording",
        tempo_ratio=tempo_ratio,
        velocity=None,
        humanize=None,
    ).to_dict()
    plan["recording"] = {k: summary[k] for k in ("file", "method", "playing_order", "cost")}
    npz_path = piece_dir.performance(performance_id)
    flac_path = piece_dir.performance_audio(performance_id)
    write_flac(flac_path, audio.audio, SAMPLE_RATE)
    write_performance(
        npz_path,
        {
            "performance_id": np.array(performance_id),
            "piece_id": np.array(piece_dir.piece_id),
            "plan_json": np.array(json.dumps(plan, sort_keys=True)),
            "synth_json": np.array(json.dumps({"recording": summary["file"]}, sort_keys=True)),
            "recording_json": np.array(json.dumps(summary, sort_keys=True)),
            "cache_key": np.array(key),
            "sample_rate": np.int64(SAMPLE_RATE),
            "n_samples": np.int64(audio.audio.size),
            "duration_sec": np.float64(audio.duration_sec),
            "spectrogram": spectrogram,
            "events": events,
            "onset_frame": onset_frame,
            "confidence": confidence,
            "pedal": np.zeros(0, dtype=PEDAL_EVENT_DTYPE),
            "onset_check_fraction": np.float64(np.nan),
        },
    )
    return RecordingResult(
        performance_id=performance_id,
        path=npz_path,
        audio_path=flac_path,
        cache_key=key,
        summary=summary,
        plan=plan,
        duration_sec=audio.duration_sec,
        n_frames=int(spectrogram.shape[1]),
        seconds=seconds,
    )
