"""Tests of msmd_builder.stages.perform: plans, realization, synthesis, onsets, the stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msmd_builder.core.errors import ConfigError, SynthesisError, ToolNotFoundError
from msmd_builder.core.tables import (
    PEDAL_EVENT_DTYPE,
    PERFORMED_EVENT_DTYPE,
    empty_performed_events,
)
from msmd_builder.core.units import SAMPLE_RATE
from msmd_builder.stages.perform.fluidsynth import (
    SoundfontCache,
    SynthSettings,
    default_soundfont_cache,
    synthesize,
)
from msmd_builder.stages.perform.npz import FORMAT_NAME, load_performance
from msmd_builder.stages.perform.onsets import onset_strength, verify_onsets
from msmd_builder.stages.perform.plans import (
    HUMANIZED_RECIPE,
    MSMD_RECIPE,
    MSMD_TEMPO_RATIOS,
    TEMPO_ROBUSTNESS_RATIOS,
    TEMPO_ROBUSTNESS_RECIPE,
    HumanizeSettings,
    PerformancePlan,
    PerformanceRecipe,
    SplitRecipe,
    choose_recipe,
    derive_seed,
    plan_performances,
)
from msmd_builder.stages.perform.realize import (
    RENDER_BLOCK_SAMPLES,
    realize,
    realize_pedal,
    snap_to_render_grid,
    tempo_map,
)
from msmd_builder.stages.perform.soundfonts import (
    SoundfontSpec,
    load_soundfonts,
    locate,
    soundfonts_with_role,
)
from msmd_builder.stages.perform.stage import perform_piece

SPECS = load_soundfonts()
TRAIN = soundfonts_with_role(SPECS, "train")
TEST = soundfonts_with_role(SPECS, "test")
SMALL = next(s for s in SPECS if s.file_name == "TimGM6mb.sf2")  # fastest to load
PIECE = "BachJS__BWV779__bach-invention-08"


def _path_or_skip(spec: SoundfontSpec):
    """The soundfont's path; skip (visibly) without it or without libfluidsynth."""
    from msmd_builder.stages.perform.fluidsynth import fluidsynth_version

    try:
        fluidsynth_version()
    except ToolNotFoundError as exc:
        pytest.skip(f"FluidSynth not available: {exc}")
    try:
        return locate(spec)
    except ToolNotFoundError as exc:
        pytest.skip(f"soundfont not installed: {exc}")


def texture() -> np.ndarray:
    """A C-major scale up and down, four chords, repeated notes and a fast figure.

    Score time: 120 bpm, a quarter note = 0.5 s = 1/4 whole note.
    """
    rows: list[tuple[int, float, float]] = []
    t = 0.0
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    for pitch in scale + scale[::-1]:
        rows.append((pitch, t, t + 0.3))
        t += 0.25
    for chord in ([48, 55, 64, 72], [50, 57, 65, 74], [43, 55, 62, 71], [48, 60, 64, 67]):
        rows.extend((pitch, t, t + 0.45) for pitch in chord)
        t += 0.5
    for _ in range(8):  # repeated notes, released right before they are struck again
        rows.append((67, t, t + 0.2))
        t += 0.25
    for i in range(12):  # 8th-note triplet-ish fast figure
        rows.append((72 + 2 * (i % 3), t, t + 0.12))
        t += 0.125
    rows.append((36, t, t + 1.0))
    events = empty_performed_events(len(rows))
    for i, (pitch, on, off) in enumerate(rows):
        events[i]["event_id"] = i
        events[i]["notehead_id"] = i
        events[i]["pitch"] = pitch
        events[i]["velocity"] = 70 + (i % 5)
        events[i]["onset_sec"] = on
        events[i]["offset_sec"] = off
        events[i]["onset_whole"] = on / 2.0
        events[i]["duration_whole"] = (off - on) / 2.0
        events[i]["staff"] = 0 if pitch >= 60 else 1
    return events


def _plan(**kwargs) -> PerformancePlan:
    base = dict(performance_id="p__tempo-1000__x", piece_id="p", soundfont=SMALL.name)
    base.update(tempo_ratio=1.0, seed=1)
    base.update(kwargs)
    return PerformancePlan(**base)


# --- plans ------------------------------------------------------------------------


def test_derive_seed_is_stable_across_processes():
    assert derive_seed(0, PIECE) == 7497341464133403581
    assert derive_seed(0, PIECE) != derive_seed(1, PIECE)
    assert 0 <= derive_seed("anything", 3.5) < 2**63


@pytest.mark.parametrize("role", ["train", "valid"])
def test_msmd_plans_for_train_and_valid(role):
    plans = plan_performances(PIECE, role=role, soundfonts=SPECS, seed=0)
    assert plans == plan_performances(PIECE, role=role, soundfonts=SPECS, seed=0)
    assert len(plans) == 7
    assert (plans[0].tempo_ratio, plans[0].soundfont) == (1.0, TRAIN[0].name)
    combos = [(p.tempo_ratio, p.soundfont) for p in plans]
    assert len(set(combos)) == 7
    assert {p.tempo_ratio for p in plans} <= set(MSMD_TEMPO_RATIOS)
    assert {p.soundfont for p in plans} <= {s.name for s in TRAIN}
    assert all(p.velocity == 64 and p.humanize is None for p in plans)
    assert all(p.piece_id == PIECE for p in plans)
    assert len({p.performance_id for p in plans}) == 7
    assert len({p.seed for p in plans}) == 7
    assert plans[0].performance_id == f"{PIECE}__tempo-1000__{TRAIN[0].name}"


def test_plans_vary_with_piece_and_seed():
    def draw(piece, seed):
        return [(p.tempo_ratio, p.soundfont) for p in plan_performances(
            piece, role="train", soundfonts=SPECS, seed=seed
        )]  # fmt: skip

    pieces = [f"Composer__Opus{i}__piece-{i}" for i in range(6)]
    assert len({tuple(sorted(draw(p, 0))) for p in pieces}) > 1
    assert any(draw(p, 0) != draw(p, 1) for p in pieces)


def test_msmd_test_plan_uses_held_out_soundfont():
    (plan,) = plan_performances(PIECE, role="test", soundfonts=SPECS, seed=0)
    assert (plan.tempo_ratio, plan.soundfont, plan.velocity) == (1.0, TEST[0].name, 64)


def test_tempo_robustness_recipe():
    plans = plan_performances(
        PIECE, role="test", soundfonts=SPECS, seed=0, recipe=TEMPO_ROBUSTNESS_RECIPE
    )
    assert [p.tempo_ratio for p in plans] == list(TEMPO_ROBUSTNESS_RATIOS)
    assert {p.soundfont for p in plans} == {TEST[0].name}
    assert [p.performance_id.split("__")[-2] for p in plans] == [
        "tempo-500",
        "tempo-660",
        "tempo-1000",
        "tempo-1330",
        "tempo-2000",
    ]
    train = plan_performances(
        PIECE, role="train", soundfonts=SPECS, seed=0, recipe=TEMPO_ROBUSTNESS_RECIPE
    )
    assert train == plan_performances(PIECE, role="train", soundfonts=SPECS, seed=0)


def test_recipes_round_trip_through_dicts():
    for recipe in (MSMD_RECIPE, TEMPO_ROBUSTNESS_RECIPE, HUMANIZED_RECIPE):
        doc = json.loads(json.dumps(recipe.to_dict()))
        assert PerformanceRecipe.from_dict(doc) == recipe
    custom = PerformanceRecipe.from_dict(
        {"name": "small", "train": {"n_performances": 3, "humanize": True}}
    )
    assert custom.train.n_performances == 3
    assert custom.train.humanize == HumanizeSettings()
    assert custom.valid == MSMD_RECIPE.valid and custom.test == MSMD_RECIPE.test
    plans = plan_performances(PIECE, role="train", soundfonts=SPECS, seed=0, recipe=custom)
    assert len(plans) == 3
    assert plans[0].humanize is None  # the reference stays exact
    assert all(p.humanize is not None for p in plans[1:])
    assert all(p.performance_id.endswith("__humanized") for p in plans[1:])
    all_train = SplitRecipe(n_performances=None)
    assert len(
        plan_performances(
            PIECE,
            role="train",
            soundfonts=SPECS,
            seed=0,
            recipe=PerformanceRecipe(train=all_train),
        )
    ) == len(MSMD_TEMPO_RATIOS) * len(TRAIN)


def test_reference_soundfont_moves_only_the_reference():
    """The 2018 paper's electric-piano reference, without touching the default build's plans."""
    electric = "fluidr3-electric-piano"
    assert TRAIN[0].name != electric and electric in {s.name for s in TRAIN}
    recipe = choose_recipe(reference_soundfont=electric)
    assert "reference_soundfont" not in MSMD_RECIPE.to_dict()["train"]  # default keys unchanged
    assert recipe.to_dict()["train"]["reference_soundfont"] == electric
    assert PerformanceRecipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    for role in ("train", "valid"):
        plans = plan_performances(PIECE, role=role, soundfonts=SPECS, seed=0, recipe=recipe)
        default = plan_performances(PIECE, role=role, soundfonts=SPECS, seed=0)
        assert (plans[0].tempo_ratio, plans[0].soundfont) == (1.0, electric)
        assert len(plans) == 7 and plans[0].humanize is None
        # the same per-piece draw: the other six are the default's, the default's
        # reference being one more candidate now
        others = {(p.tempo_ratio, p.soundfont) for p in plans[1:]}
        assert len(others & {(p.tempo_ratio, p.soundfont) for p in default[1:]}) >= 5
    test = plan_performances(PIECE, role="test", soundfonts=SPECS, seed=0, recipe=recipe)
    assert test == plan_performances(PIECE, role="test", soundfonts=SPECS, seed=0)
    robust = choose_recipe(tempo_robustness=True, reference_soundfont=electric)
    assert robust.test == TEMPO_ROBUSTNESS_RECIPE.test
    with pytest.raises(ConfigError, match="is not a 'train' soundfont"):
        plan_performances(
            PIECE, role="train", soundfonts=SPECS, seed=0,
            recipe=choose_recipe(reference_soundfont=TEST[0].name),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"bogus": {}}, r"unknown recipe keys: \['bogus'\]"),
        ({"train": {"tempo_ratios": [1.0, 1.0]}}, r"duplicate tempo ratios in \(1.0, 1.0\)"),
        ({"train": {"tempo_ratios": [0.0]}}, "tempo ratio 0.0 must be a positive number"),
        ({"train": {"velocity": 0}}, "velocity must be in 1..127 or None"),
        ({"train": {"n_performances": 0}}, "n_performances must be >= 1 or None"),
        (
            {"train": {"humanize": {"max_tempo_deviation": 0.7}}},
            r"max_tempo_deviation must be in \[0, 0.5\)",
        ),
        ({"test": {"soundfont_role": "valid"}}, "soundfont_role must be train or test"),
    ],
)
def test_bad_recipes_are_rejected(bad, message):
    with pytest.raises(ConfigError, match=message):
        PerformanceRecipe.from_dict(bad)


def test_plan_errors():
    with pytest.raises(ConfigError, match="role must be one of .*, got 'holdout'"):
        plan_performances(PIECE, role="holdout", soundfonts=SPECS, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="role 'test'"):
        plan_performances(PIECE, role="test", soundfonts=TRAIN, seed=0)


def test_plan_round_trips_through_json():
    plan = _plan(humanize=HumanizeSettings(sustain_pedal=True), velocity=None)
    assert PerformancePlan.from_dict(json.loads(plan.to_json())) == plan


# --- realization --------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.5, 0.9, 1.0, 1.1, 2.0])
def test_realize_scales_times_by_tempo_ratio(ratio):
    events = texture()
    before = events.copy()
    performed = realize(_plan(tempo_ratio=ratio), events)
    assert performed.dtype == PERFORMED_EVENT_DTYPE
    np.testing.assert_array_equal(events, before)  # the input is not modified
    np.testing.assert_array_equal(performed["onset_sec"], events["onset_sec"] / ratio)
    np.testing.assert_array_equal(performed["offset_sec"], events["offset_sec"] / ratio)
    assert np.all(performed["velocity"] == 64)
    for name in ("event_id", "notehead_id", "pitch", "onset_whole", "duration_whole", "staff"):
        np.testing.assert_array_equal(performed[name], events[name])
    assert realize_pedal(_plan(tempo_ratio=ratio), events).size == 0


def test_realize_keeps_velocities_when_velocity_is_none():
    events = texture()
    performed = realize(_plan(velocity=None), events)
    np.testing.assert_array_equal(performed["velocity"], events["velocity"])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**63 - 1),
    deviation=st.floats(min_value=0.0, max_value=0.45),
    spacing=st.floats(min_value=0.5, max_value=10.0),
    ritardando=st.floats(min_value=0.0, max_value=0.5),
    ratio=st.sampled_from([0.5, 0.9, 1.0, 1.33, 2.0]),
    end=st.floats(min_value=0.0, max_value=600.0),
)
def test_tempo_map_is_monotone_and_bounded(seed, deviation, spacing, ritardando, ratio, end):
    h = HumanizeSettings(
        max_tempo_deviation=deviation, tempo_knot_spacing_sec=spacing, final_ritardando=ritardando
    )
    tmap = tempo_map(_plan(humanize=h, seed=seed, tempo_ratio=ratio), end_sec=end)
    t = np.linspace(0.0, end + 5.0, 4001)
    perf = tmap(t)
    assert perf[0] == 0.0
    assert np.all(np.diff(perf) > 0)
    stretch = tmap.stretch_at(t)
    assert np.all(stretch >= 1 - deviation - 1e-12) and np.all(stretch <= 1 + deviation + 1e-12)
    local = tmap.local_tempo_ratio(t)
    assert np.all(local >= ratio / (1 + deviation) - 1e-9)
    assert np.all(local <= ratio / (1 - deviation) + 1e-9)
    # The map is the integral of the stretch: check against the trapezoid rule.
    fine = np.linspace(0.0, end + 5.0, 160001)
    s = tmap.stretch_at(fine)
    trapezoid = np.concatenate([[0.0], np.cumsum(np.diff(fine) * (s[1:] + s[:-1]) / 2)])
    np.testing.assert_allclose(tmap(fine), trapezoid / ratio, rtol=1e-6, atol=1e-5)
    assert tmap == tempo_map(_plan(humanize=h, seed=seed, tempo_ratio=ratio), end_sec=end)


def test_humanized_performance_is_deterministic_bounded_and_ordered():
    h = HumanizeSettings(sustain_pedal=True)
    events = texture()
    plan = _plan(humanize=h, velocity=None, seed=42)
    performed = realize(plan, events)
    np.testing.assert_array_equal(performed, realize(plan, events))
    np.testing.assert_array_equal(realize_pedal(plan, events), realize_pedal(plan, events))
    other = realize(_plan(humanize=h, velocity=None, seed=43), events)
    assert not np.array_equal(performed["onset_sec"], other["onset_sec"])

    tmap = tempo_map(plan, end_sec=float(events["offset_sec"].max()))
    exact = tmap(events["onset_sec"])
    shift = performed["onset_sec"] - exact
    assert np.all(np.abs(shift) <= h.max_asynchrony_sec + 1e-12)
    unique, counts = np.unique(events["onset_sec"], return_counts=True)
    single = np.isin(events["onset_sec"], unique[counts == 1])
    np.testing.assert_array_equal(shift[single], 0.0)
    assert np.any(shift[~single] != 0.0)  # chords are spread
    # Successive onsets keep their order (asynchrony is far below the note spacing).
    group_first = [performed["onset_sec"][events["onset_sec"] == u].min() for u in unique]
    assert np.all(np.diff(group_first) > 0)
    assert np.all(performed["offset_sec"] > performed["onset_sec"])
    # Performance time departs from score time, within the bound.
    ratio = performed["onset_sec"][-1] / events["onset_sec"][-1]
    assert ratio != 1.0 and 1 - h.max_tempo_deviation - 0.01 <= ratio <= 1 + h.max_tempo_deviation
    # Dynamics: smooth curve plus jitter around the input velocities.
    v = performed["velocity"].astype(int) - events["velocity"].astype(int)
    assert np.all(np.abs(v) <= h.velocity_range + h.velocity_jitter + 1)
    assert len(set(v.tolist())) > 3
    assert np.all((performed["velocity"] >= 1) & (performed["velocity"] <= 127))

    pedal = realize_pedal(plan, events)
    assert pedal.dtype == PEDAL_EVENT_DTYPE and pedal.size >= 4
    assert np.all(np.diff(pedal["time_sec"]) > 0)
    assert list(pedal["value"][:2]) == [127, 0] and pedal["value"][-1] == 0
    assert np.all(pedal["value"][::2] == 127) and np.all(pedal["value"][1::2] == 0)
    assert pedal["time_sec"][-1] >= performed["offset_sec"].max()


def test_snap_to_render_grid():
    events = realize(_plan(tempo_ratio=1.1), texture())
    snapped = snap_to_render_grid(events)
    for name in ("onset_sec", "offset_sec"):
        samples = snapped[name] * SAMPLE_RATE
        np.testing.assert_array_equal(np.rint(samples) % RENDER_BLOCK_SAMPLES, 0)
        np.testing.assert_allclose(samples, np.rint(samples), atol=1e-6)
    assert np.all(np.abs(snapped["onset_sec"] - events["onset_sec"]) <= 32 / SAMPLE_RATE + 1e-12)
    gap = (snapped["offset_sec"] - snapped["onset_sec"]) * SAMPLE_RATE
    assert np.all(gap >= RENDER_BLOCK_SAMPLES - 1e-6)
    np.testing.assert_array_equal(snap_to_render_grid(snapped), snapped)  # idempotent


def test_invalid_events_are_rejected():
    events = texture()
    events[3]["offset_sec"] = events[3]["onset_sec"] - 0.1
    with pytest.raises(SynthesisError, match="events have offset_sec < onset_sec"):
        realize(_plan(), events)
    events = texture()
    events[0]["pitch"] = 128
    with pytest.raises(SynthesisError, match=r"events have pitches outside 0\.\.127"):
        realize(_plan(), events)
    with pytest.raises(ConfigError, match="fields of PERFORMED_EVENT_DTYPE, got dtype float64"):
        realize(_plan(), np.zeros(3))


# --- synthesis ----------------------------------------------------------------------


def _single_note(onset_sample: int) -> np.ndarray:
    events = empty_performed_events(1)
    events["pitch"], events["velocity"] = 60, 64
    events["onset_sec"] = onset_sample / SAMPLE_RATE
    events["offset_sec"] = onset_sample / SAMPLE_RATE + 0.5
    return events


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_note_on_is_sample_exact(spec):
    path = _path_or_skip(spec)
    onset = 100 * RENDER_BLOCK_SAMPLES  # on the render grid
    audio = synthesize(
        _single_note(onset),
        soundfont_path=path,
        bank=spec.bank,
        program=spec.program,
        cache=default_soundfont_cache(),
    )
    # FluidSynth's output idles at ~1.5e-8 (its denormal guard), never above 1e-6.
    assert np.abs(audio[:onset]).max() < 1e-6
    assert np.abs(audio[onset : onset + RENDER_BLOCK_SAMPLES]).max() > 1e-4
    assert audio.size == onset + round(0.5 * SAMPLE_RATE / 64) * 64 + SAMPLE_RATE  # + 1 s tail
    # Off the grid, the note starts at the nearest block boundary, as snapping says.
    off_grid = synthesize(
        _single_note(onset + 20),
        soundfont_path=path,
        bank=spec.bank,
        program=spec.program,
        cache=default_soundfont_cache(),
    )
    assert np.abs(off_grid[:onset]).max() < 1e-6
    np.testing.assert_array_equal(off_grid[: onset + 5000], audio[: onset + 5000])


def _plain_fluidsynth_render(events: np.ndarray, path, bank: int, program: int) -> np.ndarray:
    """Reference: a freshly created pyfluidsynth synth that loads the file itself."""
    import fluidsynth

    from msmd_builder.stages.perform import fluidsynth as perform

    settings_ = SynthSettings()
    sample, kind, a, b = perform._schedule(snap_to_render_grid(events), None, SAMPLE_RATE)
    n_out = int(sample[-1]) + SAMPLE_RATE
    n_render = -(-n_out // 64) * 64
    left, right = np.zeros(n_render, np.float32), np.zeros(n_render, np.float32)
    synth = fluidsynth.Synth(**perform._synth_kwargs(settings_, SAMPLE_RATE))
    sfid = synth.sfload(str(path), update_midi_preset=1)
    synth.program_select(0, sfid, bank, program)
    write = perform._fluid().write_float
    cursor, held = 0, np.zeros(128, int)
    for s, k, x, y in zip(sample.tolist(), kind.tolist(), a.tolist(), b.tolist(), strict=True):
        if s > cursor:
            write(
                synth.synth, s - cursor, left.ctypes.data, cursor, 1, right.ctypes.data, cursor, 1
            )
            cursor = s
        if k == 2:
            held[x] += 1
            synth.noteon(0, x, y)
        elif k == 0:
            held[x] -= 1
            if held[x] == 0:
                synth.noteoff(0, x)
    n = n_render - cursor
    write(synth.synth, n, left.ctypes.data, cursor, 1, right.ctypes.data, cursor, 1)
    synth.delete()
    mono = (np.clip(left, -1, 1)[:n_out] + np.clip(right, -1, 1)[:n_out]) * np.float32(0.5)
    return mono.astype(np.float32)


def test_synthesis_is_deterministic_and_reuse_equals_fresh():
    path = _path_or_skip(SMALL)
    events = snap_to_render_grid(realize(_plan(), texture()))
    kwargs = dict(soundfont_path=path, bank=SMALL.bank, program=SMALL.program)
    with SoundfontCache() as cache:
        first = synthesize(events, cache=cache, **kwargs)
        second = synthesize(events, cache=cache, **kwargs)
        np.testing.assert_array_equal(first, second)
        # Use the cached soundfont for another piece, with pedal and another preset ...
        humanized = _plan(humanize=HumanizeSettings(sustain_pedal=True), seed=5)
        pedal = realize_pedal(humanized, texture())
        assert pedal.size > 0
        synthesize(realize(humanized, texture()), cache=cache, pedal=pedal, **kwargs)
        synthesize(events, cache=cache, soundfont_path=path, bank=0, program=2)
        assert cache.n_loads == 1
        reused = synthesize(events, cache=cache, **kwargs)
    # ... and it still renders exactly what a fresh cache and a plain synth render.
    with SoundfontCache() as fresh_cache:
        fresh = synthesize(events, cache=fresh_cache, **kwargs)
    np.testing.assert_array_equal(reused, first)
    np.testing.assert_array_equal(fresh, first)
    np.testing.assert_array_equal(
        _plain_fluidsynth_render(events, path, SMALL.bank, SMALL.program), first
    )
    assert first.dtype == np.float32 and first.ndim == 1


def test_synth_settings_are_applied():
    path = _path_or_skip(SMALL)
    events = snap_to_render_grid(realize(_plan(), texture()))
    kwargs = dict(soundfont_path=path, bank=SMALL.bank, program=SMALL.program)
    wet = synthesize(events, **kwargs)
    dry = synthesize(events, settings=SynthSettings(reverb=False, chorus=False), **kwargs)
    assert not np.array_equal(wet, dry)
    loud = synthesize(events, settings=SynthSettings(gain=0.4), **kwargs)
    ratio = np.sqrt(np.mean(loud.astype(float) ** 2) / np.mean(wet.astype(float) ** 2))
    assert ratio == pytest.approx(2.0, rel=0.01)
    with pytest.raises(ConfigError, match=r"\.sf2 has no preset at bank 7 program 99"):
        synthesize(events, soundfont_path=path, bank=7, program=99)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_the_cheaper_fluidsynth_settings_do_what_the_docs_say(spec):
    """Interpolation changes the audio a little; the chorus adds nothing to a grand piano."""
    path = _path_or_skip(spec)
    events = snap_to_render_grid(realize(_plan(), texture()))
    kwargs = dict(soundfont_path=path, bank=spec.bank, program=spec.program)
    msmd = synthesize(events, **kwargs)
    linear = synthesize(events, settings=SynthSettings(interpolation="linear"), **kwargs)
    assert not np.array_equal(linear, msmd)
    assert np.abs(linear - msmd).max() < 0.1 * np.abs(msmd).max()
    # The grand pianos send nothing to the chorus: without it, the same samples.
    # The electric piano (program 2) goes through it.
    no_chorus = synthesize(events, settings=SynthSettings(chorus=False), **kwargs)
    if spec.program == 0:
        np.testing.assert_array_equal(no_chorus, msmd)
    else:
        assert not np.array_equal(no_chorus, msmd)
    assert not np.array_equal(
        synthesize(events, settings=SynthSettings(reverb=False), **kwargs), msmd
    )


def test_settings_added_later_keep_the_cache_keys_of_earlier_performances():
    assert "interpolation" not in SynthSettings().to_dict()
    assert SynthSettings(interpolation="linear").to_dict()["interpolation"] == "linear"
    with pytest.raises(ConfigError, match="interpolation must be one of"):
        SynthSettings(interpolation="cubic")


# --- onset verification ---------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_recorded_onsets_are_heard_within_one_frame(spec):
    path = _path_or_skip(spec)
    events = snap_to_render_grid(realize(_plan(tempo_ratio=1.1), texture()))
    audio = synthesize(
        events,
        soundfont_path=path,
        bank=spec.bank,
        program=spec.program,
        cache=default_soundfont_cache(),
    )
    check = verify_onsets(audio, events)
    assert check.n_onsets == len(np.unique(events["onset_sec"]))
    assert check.fraction_within_frame >= 0.98, check
    assert abs(check.median_error_sec) < 0.025
    assert check.n_detected_matched >= 0.95 * check.n_detected  # few spurious detections


def test_verify_onsets_finds_the_missing_onsets():
    path = _path_or_skip(SMALL)
    events = snap_to_render_grid(realize(_plan(), texture()))
    unique, group = np.unique(events["onset_sec"], return_inverse=True)
    dropped = group % 3 == 1  # every third onset (group) is not played
    audio = synthesize(events[~dropped], soundfont_path=path)
    check = verify_onsets(audio, events)
    assert check.n_onsets == unique.size
    assert check.n_matched == np.unique(group[~dropped]).size
    assert set(check.unmatched_sec) == set(unique[1::3][:20].tolist())


def test_humanized_pedalled_performance_verifies():
    path = _path_or_skip(SMALL)
    plan = _plan(humanize=HumanizeSettings(sustain_pedal=True), velocity=None, seed=7)
    events = snap_to_render_grid(realize(plan, texture()))
    pedal = snap_to_render_grid(realize_pedal(plan, texture()))
    audio = synthesize(events, soundfont_path=path, pedal=pedal)
    assert verify_onsets(audio, events).fraction_within_frame >= 0.98
    without = synthesize(events, soundfont_path=path)
    assert not np.array_equal(audio, without)  # the pedal changes the sound


def _reference_onset_strength(audio: np.ndarray) -> np.ndarray:
    """The onset strength written plainly: float64, natural log, scipy's maximum filter."""
    from scipy.ndimage import maximum_filter1d

    x = audio.astype(np.float64) / np.max(np.abs(audio))
    n_frames = x.size // 128 + 1
    padded = np.pad(x, (512, 512 + 128))
    frames = np.lib.stride_tricks.sliding_window_view(padded, 1024)[::128][:n_frames]
    spec = np.log1p(1000.0 * np.abs(np.fft.rfft(frames * np.hanning(1024))))
    ref = maximum_filter1d(spec, size=3, axis=1)
    strength = np.zeros(n_frames)
    strength[1:] = np.maximum(spec[1:] - ref[:-1], 0.0).sum(axis=1)
    return strength


def test_onset_strength_is_the_plain_formula_in_base_two():
    # Long enough for several processing blocks, so the frames across block edges count.
    path = _path_or_skip(SMALL)
    events = snap_to_render_grid(realize(_plan(tempo_ratio=0.5), texture()))
    audio = synthesize(events, soundfont_path=path)
    assert audio.size // 128 + 1 > 3 * 512
    strength, times = onset_strength(audio)
    expected = _reference_onset_strength(audio) / np.log(2.0)
    assert times.shape == strength.shape == expected.shape
    assert strength[0] == 0.0
    np.testing.assert_allclose(strength, expected, rtol=1e-3, atol=1e-3 * expected.max())


def test_verify_onsets_edge_cases():
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    assert verify_onsets(silence, np.zeros(0)).fraction_within_frame == 1.0
    nothing_heard = verify_onsets(silence, np.array([0.5]))
    assert nothing_heard.n_matched == 0 and nothing_heard.unmatched_sec == (0.5,)


# --- the stage ------------------------------------------------------------------------


def _stage_plans() -> list[PerformancePlan]:
    recipe = PerformanceRecipe.from_dict({"train": {"n_performances": 2}})
    return plan_performances(PIECE, role="train", soundfonts=SPECS, seed=3, recipe=recipe)


def test_perform_piece_writes_resumable_files(tmp_path):
    from msmd_builder.core.units import n_frames, sec_to_frame

    plans = _stage_plans()
    for plan in plans:
        _path_or_skip(next(s for s in SPECS if s.name == plan.soundfont))
    events = texture()
    results = perform_piece(plans, events, out_dir=tmp_path, soundfonts=SPECS)
    assert [r.performance_id for r in results] == [p.performance_id for p in plans]
    assert not any(r.skipped for r in results)
    for plan, result in zip(plans, results, strict=True):
        assert result.path == tmp_path / f"{plan.performance_id}.npz"
        data = load_performance(result.path)
        assert data["format_name"] == FORMAT_NAME and data["plan"] == plan
        spec = data["spectrogram"]
        assert spec.dtype == np.float32 and spec.shape == (92, n_frames(data["n_samples"]))
        assert result.n_frames == spec.shape[1]
        performed = data["events"]
        assert performed.dtype == PERFORMED_EVENT_DTYPE and performed.size == events.size
        expected = snap_to_render_grid(realize(plan, events))
        np.testing.assert_array_equal(performed, expected)
        np.testing.assert_array_equal(data["onset_frame"], sec_to_frame(performed["onset_sec"]))
        assert data["pedal"].dtype == PEDAL_EVENT_DTYPE
        assert data["onset_check_fraction"] >= 0.98 and result.onset_fraction >= 0.98
        assert data["synth"]["settings"]["gain"] == 0.2
        assert not list(tmp_path.glob("*.tmp"))

    mtimes = [r.path.stat().st_mtime_ns for r in results]
    again = perform_piece(plans, events, out_dir=tmp_path, soundfonts=SPECS)
    assert all(r.skipped for r in again)
    assert [r.cache_key for r in again] == [r.cache_key for r in results]
    assert [r.path.stat().st_mtime_ns for r in again] == mtimes
    assert again[0].n_frames == results[0].n_frames

    # Audio requested later: rendered again, with a FLAC of the same length.
    with_audio = perform_piece(plans[:1], events, out_dir=tmp_path, keep_audio=True)
    assert not with_audio[0].skipped and with_audio[0].audio_path.is_file()
    import soundfile

    info = soundfile.info(str(with_audio[0].audio_path))
    assert (info.samplerate, info.channels, info.frames) == (
        SAMPLE_RATE,
        1,
        load_performance(with_audio[0].path)["n_samples"],
    )

    # A changed plan or changed events give a new key; a corrupt file is redone.
    changed = perform_piece(
        [PerformancePlan.from_dict({**plans[1].to_dict(), "velocity": 80})],
        events,
        out_dir=tmp_path,
    )
    assert not changed[0].skipped and changed[0].cache_key != results[1].cache_key
    results[1].path.write_bytes(b"garbage")
    redone = perform_piece(plans[1:], events, out_dir=tmp_path)
    assert not redone[0].skipped


def test_perform_piece_errors(tmp_path):
    plans = _stage_plans()
    with pytest.raises(SynthesisError, match="the piece has no performed events to synthesize"):
        perform_piece(plans, empty_performed_events(0), out_dir=tmp_path)
    with pytest.raises(ConfigError, match="duplicate"):
        perform_piece(plans + plans[:1], texture(), out_dir=tmp_path)
    spec = next(s for s in SPECS if s.name == plans[0].soundfont)
    _path_or_skip(spec)
    tampered = [
        SoundfontSpec.from_dict({**s.to_dict(), "sha256": "0" * 64}) if s == spec else s
        for s in SPECS
    ]
    with pytest.raises(ConfigError, match="SHA-256"):
        perform_piece(plans[:1], texture(), out_dir=tmp_path, soundfonts=tampered)
