"""An HTML page per piece: the score with its boxes, the audio, the spectrogram, in sync.

:func:`write_piece_html` reads what the stages wrote for one piece of a work
directory and writes, into ``out_dir``::

    <piece_id>.html                        the page (inline CSS, JS and data)
    <piece_id>-audio/<performance_id>.flac one file per performance shown
    <piece_id>-audio/audio.json            which performance file each FLAC came from

The page works from ``file://`` with no server and no network: page images and
spectrograms are embedded as base64 PNG, the data is inline JSON, and the only
files it refers to are the FLACs beside it (referenced relatively, so the
folder can be moved or shared as a whole).  It shows

- every page image with an SVG overlay: system boxes (grey), measure boxes
  (orange, with their bar numbers) and one box per visible notehead, coloured
  as in :mod:`msmd_builder.outputs.overlays` (aligned green, tie continuation
  blue, unaligned red); hovering a notehead tells its pitch, written moment,
  source line and onset times in every performance; clicking it plays from its
  onset in the selected performance;
- a performance selector with an ``<audio>`` element; while it plays, the
  noteheads sounding at the current time and the measure being played (every
  box of it, from the performance's measure occurrences) are highlighted and
  the page scrolls to follow them;
- the selected performance's spectrogram with its onsets marked and a playhead.

Audio comes from ``perform/<performance_id>.flac`` when the build kept it;
otherwise it is synthesized again from the performance file, which stores the
exact realized events, pedal, soundfont and synthesis settings, so the result
is sample-identical to what the spectrogram was computed from.

The markup, style and script are the ``viewer.html``, ``viewer.css`` and
``viewer.js`` templates, rendered by :func:`msmd_builder.outputs.pages.render_page`
in the page shell the HTML report shares.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from msmd_builder.core.cache import atomic_path, atomic_write_json, atomic_write_text, read_json
from msmd_builder.core.errors import ConfigError
from msmd_builder.core.units import FPS
from msmd_builder.core.workdir import WorkDir
from msmd_builder.dataset.built import BuiltPiece

if TYPE_CHECKING:
    from msmd_builder.stages.perform.fluidsynth import SoundfontCache
from msmd_builder.outputs.audio import kept_audio_path
from msmd_builder.outputs.overlays import COLOURS
from msmd_builder.outputs.pages import render_page

__all__ = ["SPECTROGRAM_PX_PER_FRAME", "write_piece_html", "spectrogram_png", "pitch_name"]

#: Horizontal CSS pixels per spectrogram frame in the page (20 fps -> 60 px/s).
SPECTROGRAM_PX_PER_FRAME = 3

_PITCH_CLASSES = ("C", "C♯", "D", "E♭", "E", "F", "F♯", "G", "A♭", "A", "B♭", "B")


def pitch_name(pitch: int) -> str:
    """Return a MIDI pitch's name with octave (60 -> ``"C4"``; sharps/flats as on a keyboard)."""
    return f"{_PITCH_CLASSES[pitch % 12]}{pitch // 12 - 1}"


def spectrogram_png(spectrogram: np.ndarray) -> bytes:
    """Encode a spectrogram as a PNG, one pixel per bin and frame, low bins at the bottom.

    Parameters
    ----------
    spectrogram : np.ndarray [shape=(n_bins, n_frames), dtype=float32]
        Log-frequency magnitudes (``log10(1 + x)``, >= 0).

    Returns
    -------
    bytes
        An RGB PNG of ``n_frames`` x ``n_bins`` pixels (magma colour map,
        scaled to the 99.5th percentile so a few loud frames do not darken
        the rest).  Deterministic for the same input.
    """
    from matplotlib import colormaps
    from PIL import Image

    values = np.asarray(spectrogram, dtype=np.float64)[::-1]
    if values.size == 0:
        values = np.zeros((max(values.shape[0], 1), 1))
    top = float(np.percentile(values, 99.5))
    scaled = np.clip(values / top, 0.0, 1.0) if top > 0 else np.zeros_like(values)
    lut = (colormaps["magma"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)
    rgb = lut[(scaled * 255).round().astype(np.intp)]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def write_piece_html(
    work_dir: str | os.PathLike[str],
    piece_id: str,
    out_dir: str | os.PathLike[str],
    *,
    performance_ids: list[str] | None = None,
    cache: SoundfontCache | None = None,
) -> Path:
    """Write the HTML viewer of one built piece (layout in the module docstring).

    Parameters
    ----------
    work_dir : path-like
        The build's work directory (``pieces/<piece_id>/{score,align}`` must
        exist; ``perform/`` is optional: without it the page has no audio).
    piece_id : str
        The piece.
    out_dir : path-like
        Where the page and its audio folder go (created if needed).
    performance_ids : list of str, optional
        Performances to include, in this order; default every performance in
        ``perform/perform.json`` (or every ``perform/*.npz`` without it).
    cache : SoundfontCache, optional
        Loaded soundfonts for re-synthesis; default
        :func:`msmd_builder.perform.default_soundfont_cache`.

    Returns
    -------
    Path
        ``<out_dir>/<piece_id>.html``.

    Raises
    ------
    ConfigError
        If the piece has not been built up to alignment, or a requested
        performance does not exist.
    SynthesisError
        If re-synthesized audio does not have the stored length.
    """
    work = WorkDir(Path(work_dir))
    built = BuiltPiece.open(work.piece(piece_id), need_performances=False)
    score_dir = built.piece_dir.score
    pages = built.score["pages"]
    noteheads, systems = built.geometry()
    measures = built.measures()
    performed = built.performed()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    audio_dir = out / f"{piece_id}-audio"
    entries = _performance_entries(built, performance_ids)
    shown = _visible(noteheads)
    index_of = {int(noteheads["notehead_id"][i]): k for k, i in enumerate(np.flatnonzero(shown))}
    performances = []
    if entries:
        audio_dir.mkdir(parents=True, exist_ok=True)
        performances = _performances(entries, built, performed, audio_dir, index_of, cache)
    document = {
        "piece": {"id": piece_id, **_titles(Path(work_dir), piece_id)},
        "heads": _heads(noteheads[shown]),
        "score_events": _event_rows(performed, index_of),
        "performances": performances,
        "px_per_frame": SPECTROGRAM_PX_PER_FRAME,
    }
    page_boxes = [
        _page_boxes(page, score_dir, noteheads, systems, measures, performed, shown, index_of)
        for page in pages
    ]
    path = out / f"{piece_id}.html"
    atomic_write_text(path, _html(document, page_boxes, noteheads, shown, measures))
    return path


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def _visible(noteheads: np.ndarray) -> np.ndarray:
    """Mask of the noteheads that have a box on a page image."""
    finite = np.isfinite(noteheads["x0_px"]) & np.isfinite(noteheads["y1_px"])
    return noteheads["visible"] & (noteheads["page"] >= 0) & finite


def _category(head: np.void, aligned: set[int]) -> str:
    """Overlay category of a notehead, as :mod:`msmd_builder.outputs.overlays` colours it."""
    if head["tied"]:
        return "tied"
    if int(head["notehead_id"]) in aligned and head["visible"]:
        return "aligned"
    return "unaligned"


def _moment(onset_whole: float, grace_whole: float) -> str:
    text = str(Fraction(float(onset_whole)).limit_denominator(3840))
    if grace_whole:
        text += f" − {Fraction(-float(grace_whole)).limit_denominator(3840)} (grace)"
    return text


def _heads(heads: np.ndarray) -> dict[str, list]:
    """Column-wise facts of the drawn noteheads for the tooltip (index = box index)."""
    return {
        "id": [int(v) for v in heads["notehead_id"]],
        "pitch": [int(v) for v in heads["pitch"]],
        "name": [pitch_name(int(v)) for v in heads["pitch"]],
        "moment": [
            _moment(o, g) for o, g in zip(heads["onset_whole"], heads["grace_whole"], strict=True)
        ],
        "line": [int(v) for v in heads["source_line"]],
        "char": [int(v) for v in heads["source_char"]],
        "tied": [bool(v) for v in heads["tied"]],
        "page": [int(v) for v in heads["page"]],
        "book": [int(v) for v in heads["book"]],
        "system": [int(v) for v in heads["system"]],
    }


def _event_rows(events: np.ndarray, index_of: dict[int, int]) -> list[list[float]]:
    """``[box index or -1, onset_sec, offset_sec]`` per event, sorted by onset (ms precision)."""
    order = np.argsort(events["onset_sec"], kind="stable")
    return [
        [
            index_of.get(int(events["notehead_id"][i]), -1),
            round(float(events["onset_sec"][i]), 3),
            round(float(events["offset_sec"][i]), 3),
        ]
        for i in order
    ]


def _titles(work_dir: Path, piece_id: str) -> dict[str, str]:
    """Title and composer from the corpus index, empty when it is missing."""
    from msmd_builder.stages.corpus.index import find_piece, read_index

    index = work_dir / "index.csv"
    if index.is_file():
        try:
            entry = find_piece(read_index(index), piece_id)
        except ConfigError:
            entry = None
        if entry is not None:
            return {"title": entry.title or "", "composer": entry.composer or ""}
    return {"title": "", "composer": ""}


def _performance_entries(built: BuiltPiece, wanted: list[str] | None) -> list[dict[str, Any]]:
    """Return the performances to show (all of ``perform.json``, or those ``wanted``)."""
    entries = []
    if built.perform is not None:
        for entry in built.performance_entries():
            roles = sorted(entry["roles"], key=_role_order)
            entries.append({**entry, "role": "/".join(roles)})
    if wanted is None:
        return entries
    by_id = {e["performance_id"]: e for e in entries}
    missing = [p for p in wanted if p not in by_id]
    if missing:
        raise ConfigError(
            f"no performance {', '.join(missing)} in {built.piece_dir.perform}; "
            f"known: {', '.join(by_id) or 'none'}"
        )
    return [by_id[p] for p in wanted]


def _role_order(role: str) -> tuple[int, str]:
    order = ("train", "valid", "test")
    return (order.index(role) if role in order else len(order), role)


def _measure_rows(measures: np.ndarray) -> list[list[float]]:
    """``[measure, occurrence, start_sec, end_sec]`` per measure occurrence (ms precision)."""
    return [
        [
            int(m["measure"]),
            int(m["occurrence"]),
            round(float(m["start_sec"]), 3),
            round(float(m["end_sec"]), 3),
        ]
        for m in measures
    ]


def _performances(
    entries: list[dict[str, Any]],
    built: BuiltPiece,
    performed: np.ndarray,
    audio_dir: Path,
    index_of: dict[int, int],
    cache: SoundfontCache | None,
) -> list[dict[str, Any]]:
    from msmd_builder.stages.perform.measures import performance_measures

    n_events = len(performed)
    score_measures = built.performed_measures()
    perform_dir = built.piece_dir.perform
    manifest_path = audio_dir / "audio.json"
    manifest = read_json(manifest_path) if manifest_path.is_file() else {}
    shown = []
    for entry in entries:
        perf_id = entry["performance_id"]
        data = built.load_performance(
            perform_dir / entry["file"], cache_key=entry["cache_key"], n_events=n_events
        )
        flac = audio_dir / f"{perf_id}.flac"
        record = manifest.get(perf_id, {})
        if not (flac.is_file() and record.get("cache_key") == data["cache_key"]):
            kept = kept_audio_path(built, entry)
            if kept.is_file():
                with atomic_path(flac) as tmp:
                    shutil.copyfile(kept, tmp)
                source = "copied"
            else:
                _resynthesize(data, flac, cache)
                source = "synthesized"
            manifest[perf_id] = {"cache_key": data["cache_key"], "source": source}
        plan = data["plan"]
        events = data["events"]
        shown.append(
            {
                "id": perf_id,
                "label": _label(plan.tempo_ratio, plan.soundfont, entry.get("role")),
                "audio": f"{quote(audio_dir.name)}/{quote(perf_id)}.flac",
                "duration_sec": round(float(data["duration_sec"]), 3),
                "onset_fraction": _finite(data.get("onset_check_fraction")),
                "spectrogram": "data:image/png;base64,"
                + base64.b64encode(spectrogram_png(data["spectrogram"])).decode("ascii"),
                "n_frames": int(data["spectrogram"].shape[1]),
                "fps": FPS,
                "events": _event_rows(events, index_of),
                "measures": _measure_rows(performance_measures(score_measures, plan, performed)),
            }
        )
    atomic_write_json(manifest_path, manifest)
    return shown


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return round(value, 4) if np.isfinite(value) else None


def _label(tempo_ratio: float, soundfont: str, role: str | None) -> str:
    label = f"tempo × {tempo_ratio:g} · {soundfont}"
    return f"{label} · {role}" if role else label


def _resynthesize(data: dict[str, Any], flac: Path, cache: SoundfontCache | None) -> None:
    """Render a performance's stored events again and write them as FLAC."""
    import soundfile

    from msmd_builder.outputs.audio import resynthesize

    audio = resynthesize(data, cache)
    with atomic_path(flac) as tmp:
        soundfile.write(str(tmp), audio, int(data["sample_rate"]), format="FLAC", subtype="PCM_16")


# --------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------


def _rgb(name: str) -> str:
    return "rgb({},{},{})".format(*COLOURS[name])


def _page_boxes(
    page: dict[str, Any],
    score_dir: Path,
    noteheads: np.ndarray,
    systems: np.ndarray,
    measures: np.ndarray,
    performed: np.ndarray,
    shown: np.ndarray,
    index_of: dict[int, int],
) -> dict[str, Any]:
    """One page for the template: its image and its boxes in page-image pixels."""
    book, number = int(page["book"]), int(page["page"])
    aligned = {int(v) for v in performed["notehead_id"] if v >= 0}
    on_page = (systems["book"] == book) & (systems["page"] == number)
    system_boxes = [
        {"system": int(system["system"]), **_box(system, 3)} for system in systems[on_page]
    ]
    here = (measures["book"] == book) & (measures["page"] == number)
    measure_boxes = [
        {
            "measure": int(box["measure"]),
            "bar": int(box["bar_number"]),
            "part": int(box["part"]),
            **_box(box, 0),
        }
        for box in measures[here]
    ]
    on_page = (noteheads["book"] == book) & (noteheads["page"] == number) & shown
    head_boxes = [
        {
            "index": index_of[int(head["notehead_id"])],
            "category": _category(head, aligned),
            **_box(head, 1),
        }
        for head in noteheads[on_page]
    ]
    return {
        "book": book,
        "page": number,
        "width": int(page["width_px"]),
        "height": int(page["height_px"]),
        "png": base64.b64encode((score_dir / page["path"]).read_bytes()).decode("ascii"),
        "systems": system_boxes,
        "measures": measure_boxes,
        "noteheads": head_boxes,
    }


def _box(row: np.void, pad: int) -> dict[str, float]:
    """Return a box grown by ``pad`` pixels on every side, as SVG ``x, y, width, height``."""
    x0, y0 = round(float(row["x0_px"]) - pad, 1), round(float(row["y0_px"]) - pad, 1)
    x1, y1 = round(float(row["x1_px"]) + pad, 1), round(float(row["y1_px"]) + pad, 1)
    return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}


def _html(
    document: dict,
    pages: list[dict[str, Any]],
    noteheads: np.ndarray,
    shown: np.ndarray,
    measures: np.ndarray,
) -> str:
    piece = document["piece"]
    heading = piece["title"] or piece["id"]
    legend = (
        ("aligned", "aligned"),
        ("tied", "tie continuation"),
        ("unaligned", "unaligned"),
        ("system", "system"),
        ("measure", "measure"),
    )
    return render_page(
        "viewer.html",
        title=f"{heading} · msmd-builder",
        heading=heading,
        subtitle=" · ".join(v for v in (piece["composer"], piece["id"]) if v),
        facts=[
            f"{len(pages)} page(s)",
            f"{len(np.unique(measures['measure']))} measures",
            f"{int(shown.sum())} noteheads drawn",
            f"{int((~shown).sum())} hidden or not laid out",
            f"{len(document['performances'])} performance(s)",
        ],
        legend=[{"label": label, "colour": _rgb(name)} for name, label in legend],
        colours={
            name: _rgb(name) for name in ("system", "measure", "aligned", "tied", "unaligned")
        },
        pages=pages,
        data=document,
    )
