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

- every page image with an SVG overlay: system boxes (grey) and one box per
  visible notehead, coloured as in :mod:`msmd_builder.view` (aligned green,
  tie continuation blue, unaligned red); hovering a notehead tells its pitch,
  written moment, source line and onset times in every performance; clicking
  it plays from its onset in the selected performance;
- a performance selector with an ``<audio>`` element; while it plays, the
  noteheads sounding at the current time are highlighted and the page
  scrolls to follow them;
- the selected performance's spectrogram with its onsets marked and a playhead.

Audio comes from ``perform/<performance_id>.flac`` when the build kept it;
otherwise it is synthesized again from the performance file, which stores the
exact realized events, pedal, soundfont and synthesis settings, so the result
is sample-identical to what the spectrogram was computed from.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import shutil
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from msmd_builder.core.cache import atomic_path, atomic_write_json, atomic_write_text, read_json
from msmd_builder.core.errors import ConfigError, SynthesisError
from msmd_builder.core.units import FPS
from msmd_builder.core.workdir import WorkDir
from msmd_builder.dataset.built import BuiltPiece

if TYPE_CHECKING:
    from msmd_builder.stages.perform.fluidsynth import SoundfontCache
from msmd_builder.outputs.overlays import COLOURS

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
        performances = _performances(entries, built, len(performed), audio_dir, index_of, cache)
    document = {
        "piece": {"id": piece_id, **_titles(Path(work_dir), piece_id)},
        "heads": _heads(noteheads[shown]),
        "score_events": _event_rows(performed, index_of),
        "performances": performances,
        "px_per_frame": SPECTROGRAM_PX_PER_FRAME,
    }
    page_svgs = [
        _page_svg(page, score_dir, noteheads, systems, performed, shown, index_of) for page in pages
    ]
    path = out / f"{piece_id}.html"
    atomic_write_text(path, _html(document, page_svgs, noteheads, shown))
    return path


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def _visible(noteheads: np.ndarray) -> np.ndarray:
    """Mask of the noteheads that have a box on a page image."""
    finite = np.isfinite(noteheads["x0_px"]) & np.isfinite(noteheads["y1_px"])
    return noteheads["visible"] & (noteheads["page"] >= 0) & finite


def _category(head: np.void, aligned: set[int]) -> str:
    """Overlay category of a notehead, as :func:`msmd_builder.view.draw_overlays` colours it."""
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


def _performances(
    entries: list[dict[str, Any]],
    built: BuiltPiece,
    n_events: int,
    audio_dir: Path,
    index_of: dict[int, int],
    cache: SoundfontCache | None,
) -> list[dict[str, Any]]:
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
            kept = perform_dir / (entry.get("audio") or f"{perf_id}.flac")
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
    """Render a performance's stored events again, exactly as the perform stage did."""
    import soundfile

    from msmd_builder.stages.perform.fluidsynth import (
        SynthSettings,
        default_soundfont_cache,
        synthesize,
    )
    from msmd_builder.stages.perform.soundfonts import SoundfontSpec, locate

    spec = SoundfontSpec.from_dict(data["synth"]["soundfont"])
    sf_path = locate(spec)
    cache = cache if cache is not None else default_soundfont_cache()
    if cache.sha256(sf_path) != spec.sha256:
        raise ConfigError(
            f"soundfont {spec.name!r}: {sf_path} is not the file the performance was rendered "
            f"with (SHA-256 differs); run `msmd-build soundfonts check`"
        )
    audio = synthesize(
        data["events"],
        soundfont_path=sf_path,
        bank=spec.bank,
        program=spec.program,
        sample_rate=int(data["sample_rate"]),
        settings=SynthSettings(**data["synth"]["settings"]),
        pedal=data["pedal"],
        cache=cache,
    )
    if audio.size != int(data["n_samples"]):
        raise SynthesisError(
            f"{data['performance_id']}: re-synthesis gave {audio.size} samples, "
            f"the performance file has {int(data['n_samples'])}"
        )
    with atomic_path(flac) as tmp:
        soundfile.write(str(tmp), audio, int(data["sample_rate"]), format="FLAC", subtype="PCM_16")


# --------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------


def _rgb(name: str) -> str:
    return "rgb({},{},{})".format(*COLOURS[name])


def _page_svg(
    page: dict[str, Any],
    score_dir: Path,
    noteheads: np.ndarray,
    systems: np.ndarray,
    performed: np.ndarray,
    shown: np.ndarray,
    index_of: dict[int, int],
) -> str:
    """One page: the image and its boxes as an inline SVG in page-image pixels."""
    book, number = int(page["book"]), int(page["page"])
    width, height = int(page["width_px"]), int(page["height_px"])
    png = base64.b64encode((score_dir / page["path"]).read_bytes()).decode("ascii")
    aligned = {int(v) for v in performed["notehead_id"] if v >= 0}
    parts = [
        f'<svg class="page" id="page-{book}-{number}" data-book="{book}" data-page="{number}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<image href="data:image/png;base64,{png}" x="0" y="0" width="{width}" '
        f'height="{height}"/>',
    ]
    on_page = (systems["book"] == book) & (systems["page"] == number)
    for system in systems[on_page]:
        x0, y0, x1, y1 = _box(system, 3)
        parts.append(
            f'<rect class="sys" data-system="{int(system["system"])}" x="{x0}" y="{y0}" '
            f'width="{x1 - x0}" height="{y1 - y0}"/>'
        )
    on_page = (noteheads["book"] == book) & (noteheads["page"] == number) & shown
    for head in noteheads[on_page]:
        x0, y0, x1, y1 = _box(head, 1)
        k = index_of[int(head["notehead_id"])]
        parts.append(
            f'<rect class="nh {_category(head, aligned)}" data-i="{k}" x="{x0}" y="{y0}" '
            f'width="{x1 - x0}" height="{y1 - y0}"/>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _box(row: np.void, pad: int) -> tuple[float, float, float, float]:
    return (
        round(float(row["x0_px"]) - pad, 1),
        round(float(row["y0_px"]) - pad, 1),
        round(float(row["x1_px"]) + pad, 1),
        round(float(row["y1_px"]) + pad, 1),
    )


def _json_for_script(document: Any) -> str:
    """JSON that is safe inside a ``<script>`` element."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _html(document: dict, page_svgs: list[str], noteheads: np.ndarray, shown: np.ndarray) -> str:
    piece = document["piece"]
    heading = piece["title"] or piece["id"]
    facts = [
        f"{len(page_svgs)} page(s)",
        f"{int(shown.sum())} noteheads drawn",
        f"{int((~shown).sum())} hidden or not laid out",
        f"{len(document['performances'])} performance(s)",
    ]
    options = "\n".join(
        f'<option value="{k}">{html.escape(p["label"])}</option>'
        for k, p in enumerate(document["performances"])
    )
    legend = " ".join(
        f'<span class="key" style="border-color:{_rgb(name)}">{label}</span>'
        for name, label in (
            ("aligned", "aligned"),
            ("tied", "tie continuation"),
            ("unaligned", "unaligned"),
            ("system", "system"),
        )
    )
    legend += ' <span class="key now">sounding now</span>'

    replacements = {
        "__TITLE__": html.escape(f"{heading} · msmd-builder"),
        "__HEADING__": html.escape(heading),
        "__SUBTITLE__": html.escape(" · ".join(v for v in (piece["composer"], piece["id"]) if v)),
        "__FACTS__": html.escape(" · ".join(facts)),
        "__LEGEND__": legend,
        "__OPTIONS__": options or '<option value="-1">no performances</option>',
        "__PAGES__": "\n".join(page_svgs),
        "__DATA__": _json_for_script(document),
        "__C_SYSTEM__": _rgb("system"),
        "__C_ALIGNED__": _rgb("aligned"),
        "__C_TIED__": _rgb("tied"),
        "__C_UNALIGNED__": _rgb("unaligned"),
    }
    text = _TEMPLATE
    for key, value in replacements.items():
        text = text.replace(key, value)
    return text


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>__TITLE__</title>
<style>
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: #222; background: #eee; }
header { padding: 8px 16px; background: #fff; border-bottom: 1px solid #ccc; }
header h1 { margin: 0; font-size: 20px; }
header .sub, header .facts { color: #555; }
.key { border: 2px solid; padding: 0 4px; margin-right: 6px; font-size: 12px; }
.key.now { border-color: #00708c; background: rgba(0,210,255,.5); }
#player { position: sticky; top: 0; z-index: 2; background: #fafafa;
  border-bottom: 1px solid #bbb; padding: 6px 16px; }
#controls { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
#controls audio { height: 32px; width: 420px; }
#time { font-variant-numeric: tabular-nums; min-width: 70px; }
#spec { position: relative; overflow-x: auto; overflow-y: hidden; height: 150px;
  margin-top: 6px; background: #000; cursor: crosshair; }
#spec-inner { position: relative; height: 138px; }
#spec-img { position: absolute; left: 0; top: 0; height: 138px; image-rendering: pixelated; }
#spec-marks { position: absolute; left: 0; top: 0; height: 138px; }
#playhead { position: absolute; top: 0; width: 2px; height: 138px; background: #0ff; left: 0; }
#pages { padding: 16px; display: flex; flex-direction: column; align-items: center; gap: 16px; }
svg.page { background: #fff; box-shadow: 0 1px 4px rgba(0,0,0,.3); max-width: 100%;
  height: auto; }
rect.sys { fill: none; stroke: __C_SYSTEM__; stroke-width: 1; }
rect.nh { fill: transparent; stroke-width: 1; cursor: pointer; }
rect.nh.aligned { stroke: __C_ALIGNED__; }
rect.nh.tied { stroke: __C_TIED__; }
rect.nh.unaligned { stroke: __C_UNALIGNED__; }
rect.nh:hover { fill: rgba(0,0,0,.15); }
rect.nh.on { fill: rgba(0,210,255,.5); stroke: #00708c; stroke-width: 2; }
#tip { position: fixed; z-index: 3; display: none; pointer-events: none; background: #fff;
  border: 1px solid #888; box-shadow: 0 2px 6px rgba(0,0,0,.25); padding: 6px 8px;
  font-size: 12px; max-width: 480px; }
#tip b { font-size: 14px; }
#tip .perf { color: #444; }
#note { color: #a00; }
</style>
</head>
<body>
<header>
<h1>__HEADING__</h1>
<div class="sub">__SUBTITLE__</div>
<div class="facts">__FACTS__ · __LEGEND__</div>
</header>
<div id="player">
<div id="controls">
<label>performance <select id="perf">
__OPTIONS__
</select></label>
<audio id="audio" controls preload="metadata"></audio>
<span id="time">0.00 s</span>
<label><input type="checkbox" id="follow" checked> follow</label>
<span id="note"></span>
</div>
<div id="spec"><div id="spec-inner"><img id="spec-img" alt="spectrogram">
<svg id="spec-marks" xmlns="http://www.w3.org/2000/svg"></svg>
<div id="playhead"></div></div></div>
</div>
<div id="pages">
__PAGES__
</div>
<div id="tip"></div>
<script type="application/json" id="data">__DATA__</script>
<script>
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const heads = DATA.heads;
  const perfs = DATA.performances;
  const pxPerFrame = DATA.px_per_frame;
  const boxes = Array.from(document.querySelectorAll("rect.nh"));
  const boxOf = new Array(heads.id.length);
  boxes.forEach(function (el) { boxOf[Number(el.dataset.i)] = el; });
  const audio = document.getElementById("audio");
  const select = document.getElementById("perf");
  const spec = document.getElementById("spec");
  const specInner = document.getElementById("spec-inner");
  const specImg = document.getElementById("spec-img");
  const marks = document.getElementById("spec-marks");
  const playhead = document.getElementById("playhead");
  const timeLabel = document.getElementById("time");
  const follow = document.getElementById("follow");
  const tip = document.getElementById("tip");
  const note = document.getElementById("note");
  const SVGNS = "http://www.w3.org/2000/svg";

  // Onsets of every drawn notehead: in score seconds and per performance.
  function onsetsByHead(events) {
    const out = new Map();
    events.forEach(function (e) {
      if (e[0] < 0) { return; }
      if (!out.has(e[0])) { out.set(e[0], []); }
      out.get(e[0]).push(e[1]);
    });
    return out;
  }
  const scoreOnsets = onsetsByHead(DATA.score_events);
  const perfOnsets = perfs.map(function (p) { return onsetsByHead(p.events); });

  let current = -1;
  let lit = [];
  let lastFollowed = null;

  function fmt(t) { return t.toFixed(2) + " s"; }

  function selectPerformance(k) {
    current = k;
    clearCursor();
    marks.innerHTML = "";
    if (k < 0 || k >= perfs.length) {
      note.textContent = "no performance of this piece was built";
      specInner.style.width = "0px";
      return;
    }
    const p = perfs[k];
    const fps = p.fps;
    const width = p.n_frames * pxPerFrame;
    audio.src = p.audio;
    specImg.src = p.spectrogram;
    specImg.style.width = width + "px";
    specInner.style.width = width + "px";
    marks.setAttribute("width", width);
    marks.setAttribute("height", 138);
    const seen = new Set();
    p.events.forEach(function (e) {
      const x = Math.round(e[1] * fps * pxPerFrame * 10) / 10;
      if (seen.has(x)) { return; }
      seen.add(x);
      [[0, 8], [130, 138]].forEach(function (y) {
        const line = document.createElementNS(SVGNS, "line");
        line.setAttribute("x1", x); line.setAttribute("x2", x);
        line.setAttribute("y1", y[0]); line.setAttribute("y2", y[1]);
        line.setAttribute("stroke", e[0] >= 0 ? "#7CFC00" : "#ff4040");
        line.setAttribute("stroke-width", "1");
        marks.appendChild(line);
      });
    });
    update();
  }

  function clearCursor() {
    lit.forEach(function (el) { el.classList.remove("on"); });
    lit = [];
  }

  function update() {
    const t = audio.currentTime || 0;
    timeLabel.textContent = fmt(t);
    if (current < 0) { return; }
    const p = perfs[current];
    const x = t * p.fps * pxPerFrame;
    playhead.style.left = x + "px";
    const view = spec.clientWidth;
    if (x < spec.scrollLeft + 0.1 * view || x > spec.scrollLeft + 0.7 * view) {
      spec.scrollLeft = Math.max(0, x - 0.3 * view);
    }
    const now = [];
    p.events.forEach(function (e) {
      if (e[0] >= 0 && e[1] <= t && t < e[2] && boxOf[e[0]]) { now.push(boxOf[e[0]]); }
    });
    clearCursor();
    now.forEach(function (el) { el.classList.add("on"); });
    lit = now;
    if (now.length && follow.checked) { followTo(now[0]); }
  }

  function followTo(el) {
    const k = Number(el.dataset.i);
    const key = heads.book[k] + "/" + heads.system[k];
    if (key === lastFollowed) { return; }
    lastFollowed = key;
    const top = document.getElementById("player").getBoundingClientRect().bottom;
    const r = el.getBoundingClientRect();
    if (r.top < top + 20 || r.bottom > window.innerHeight - 20) {
      window.scrollBy({ top: r.top - top - 0.25 * (window.innerHeight - top) });
    }
  }

  function loop() {
    update();
    if (!audio.paused) { window.requestAnimationFrame(loop); }
  }

  function showTip(el, ev) {
    const k = Number(el.dataset.i);
    const lines = [];
    lines.push("<b>" + heads.name[k] + "</b> (MIDI " + heads.pitch[k] + ")" +
      (heads.tied[k] ? " · tie continuation" : ""));
    lines.push("moment " + heads.moment[k] + " (whole notes) · source line " + heads.line[k] +
      ", char " + heads.char[k] + " · notehead " + heads.id[k]);
    const s = scoreOnsets.get(k);
    lines.push("score: " + (s ? s.map(fmt).join(", ") : "not played"));
    perfs.forEach(function (p, j) {
      const o = perfOnsets[j].get(k);
      lines.push("<span class='perf'>" + escapeHtml(p.label) + ": " +
        (o ? o.map(fmt).join(", ") : "—") + "</span>");
    });
    tip.innerHTML = lines.join("<br>");
    tip.style.display = "block";
    moveTip(ev);
  }

  function moveTip(ev) {
    const w = tip.offsetWidth, h = tip.offsetHeight;
    let x = ev.clientX + 14, y = ev.clientY + 14;
    if (x + w > window.innerWidth) { x = ev.clientX - w - 14; }
    if (y + h > window.innerHeight) { y = ev.clientY - h - 14; }
    tip.style.left = Math.max(0, x) + "px";
    tip.style.top = Math.max(0, y) + "px";
  }

  function escapeHtml(s) {
    return s.replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  boxes.forEach(function (el) {
    el.addEventListener("mouseenter", function (ev) { showTip(el, ev); });
    el.addEventListener("mousemove", moveTip);
    el.addEventListener("mouseleave", function () { tip.style.display = "none"; });
    el.addEventListener("click", function () {
      if (current < 0) { return; }
      const o = perfOnsets[current].get(Number(el.dataset.i));
      if (o) { audio.currentTime = o[0]; }
    });
  });
  spec.addEventListener("click", function (ev) {
    if (current < 0) { return; }
    const rect = specInner.getBoundingClientRect();
    audio.currentTime = (ev.clientX - rect.left) / (perfs[current].fps * pxPerFrame);
  });
  select.addEventListener("change", function () { selectPerformance(Number(select.value)); });
  audio.addEventListener("play", function () { lastFollowed = null; loop(); });
  ["seeked", "timeupdate", "pause", "ended"].forEach(function (name) {
    audio.addEventListener(name, update);
  });
  audio.addEventListener("seeking", function () { lastFollowed = null; });
  audio.addEventListener("error", function () {
    note.textContent = "audio not found: " + (perfs[current] ? perfs[current].audio : "");
  });
  selectPerformance(perfs.length ? 0 : -1);
  // For tests and the console: the notehead ids under the cursor now.
  window.msmdViewer = { select: selectPerformance, update: update, lit: function () {
    return lit.map(function (el) { return heads.id[Number(el.dataset.i)]; });
  } };
})();
</script>
</body>
</html>
"""
