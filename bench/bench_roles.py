"""Audio hours of every split role's performances against those the requested splits need.

Usage::

    .venv/bin/python bench/bench_roles.py --work-dir W --out O

Reads a dataset build (with or without ``--all-roles``): each built piece's
plans (seed and recipe from its ``perform/perform.json``), the split files in
``O/splits/``.  A performance's length is the one recorded when it was
synthesized; for one that was not, it is computed as synthesis would make it
(``rendered_samples``), without synthesizing.
Prints the hours and performances of every role of every piece in a split
(what the build synthesized before roles were chosen per piece) and of the
roles the splits give each piece (what it synthesizes now), per soundfont.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from msmd_builder.core.cache import read_json
from msmd_builder.core.units import SAMPLE_RATE
from msmd_builder.core.workdir import WorkDir
from msmd_builder.stages.align.stage import AlignResult
from msmd_builder.stages.perform.fluidsynth import rendered_samples
from msmd_builder.stages.perform.plans import PerformanceRecipe, plan_piece
from msmd_builder.stages.perform.realize import _as_event_table, realize_on_grid
from msmd_builder.stages.perform.soundfonts import load_soundfonts
from msmd_builder.stages.shards import part_role
from msmd_builder.stages.splits.split import read_split


def computed_seconds(plan, table) -> float:  # noqa: ANN001 - bench glue
    """The length synthesis gives a plan's rendering, computed without synthesizing."""
    performed, pedal = realize_on_grid(plan, table)
    return rendered_samples(performed, pedal=pedal) / SAMPLE_RATE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    roles: dict[str, set[str]] = {}
    names = []
    for path in sorted((args.out / "splits").glob("*.yaml")):
        names.append(path.stem)
        for part, ids in read_split(path).parts.items():
            for piece_id in ids:
                roles.setdefault(piece_id, set()).add(part_role(part))
    specs = load_soundfonts()
    hours = {"every": Counter(), "needed": Counter(), "synthesized": Counter()}
    counts: Counter[str] = Counter()
    computed = 0
    work = WorkDir(args.work_dir)
    for piece_id in sorted(roles):
        piece_dir = work.piece(piece_id)
        record = json.loads(piece_dir.perform_record.read_text())
        listed = {p["performance_id"]: float(p["duration_sec"]) for p in record["performances"]}
        recipe = PerformanceRecipe.from_dict(record["recipe"])
        plans, plan_roles = plan_piece(
            piece_id, soundfonts=specs, seed=int(record["seed"]), recipe=recipe
        )
        wanted = {i for role in roles[piece_id] for i in plan_roles.get(role, ())}
        table = None
        for plan in plans:
            seconds = listed.get(plan.performance_id)
            if seconds is None:
                if table is None:
                    aligned = AlignResult.from_dict(read_json(piece_dir.align_record))
                    table = _as_event_table(aligned.load())
                seconds = computed_seconds(plan, table)
                computed += 1
            else:
                hours["synthesized"][plan.soundfont] += seconds / 3600
                counts["synthesized"] += 1
            hours["every"][plan.soundfont] += seconds / 3600
            counts["every"] += 1
            if plan.performance_id in wanted:
                hours["needed"][plan.soundfont] += seconds / 3600
                counts["needed"] += 1
    total, kept = sum(hours["every"].values()), sum(hours["needed"].values())
    print(f"splits: {', '.join(names)}; pieces in a split: {len(roles)}")
    print(f"every role:        {counts['every']:6d} performances, {total:7.1f} h")
    print(
        f"the splits' roles: {counts['needed']:6d} performances, {kept:7.1f} h "
        f"({100 * kept / max(total, 1e-9):.1f} %, {total - kept:.1f} h fewer)"
    )
    print(
        f"synthesized by this build: {counts['synthesized']} performances, "
        f"{sum(hours['synthesized'].values()):.1f} h "
        f"({computed} lengths computed without synthesis)"
    )
    for font in sorted(hours["every"]):
        print(f"  {font:28s} {hours['every'][font]:7.1f} h -> {hours['needed'][font]:7.1f} h")


if __name__ == "__main__":
    main()
