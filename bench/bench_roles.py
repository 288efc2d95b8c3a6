"""Audio hours synthesized for every split role against those the requested splits need.

Usage::

    .venv/bin/python bench/bench_roles.py --work-dir W --out O

Reads a dataset build made with every role (``msmd-build dataset --all-roles``,
or any build before roles were chosen per piece): the durations of the
performances in each piece's ``perform/perform.json`` and the split files in
``O/splits/``.  Prints the hours and performances of every role of every built
piece, and of the roles the splits give each piece (what a build without
``--all-roles`` synthesizes), per soundfont.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from msmd_builder.stages.shards import part_role
from msmd_builder.stages.splits.split import read_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    roles: dict[str, set[str]] = {}
    for path in sorted((args.out / "splits").glob("*.yaml")):
        split = read_split(path)
        for part, ids in split.parts.items():
            for piece_id in ids:
                roles.setdefault(piece_id, set()).add(part_role(part))
    every: Counter[str] = Counter()
    needed: Counter[str] = Counter()
    counts = Counter()
    for record_path in sorted((args.work_dir / "pieces").glob("*/perform/perform.json")):
        record = json.loads(record_path.read_text())
        piece_id = record["piece_id"]
        if piece_id not in roles:
            continue  # not in any split (not built through every stage)
        wanted = {i for role in roles[piece_id] for i in record["roles"].get(role, ())}
        for entry in record["performances"]:
            font = entry["plan"]["soundfont"]
            hours = float(entry["duration_sec"]) / 3600
            every[font] += hours
            counts["every"] += 1
            if entry["performance_id"] in wanted:
                needed[font] += hours
                counts["needed"] += 1
    total, kept = sum(every.values()), sum(needed.values())
    print(f"splits: {', '.join(p.stem for p in sorted((args.out / 'splits').glob('*.yaml')))}")
    print(f"pieces in a split: {len(roles)}")
    print(f"every role:       {counts['every']:6d} performances, {total:7.1f} h")
    print(
        f"the splits' roles: {counts['needed']:6d} performances, {kept:7.1f} h "
        f"({100 * kept / max(total, 1e-9):.1f} %, {total - kept:.1f} h fewer)"
    )
    for font in sorted(every):
        print(f"  {font:28s} {every[font]:7.1f} h -> {needed[font]:7.1f} h")


if __name__ == "__main__":
    main()
