"""Mutation score of each mutated module, from the results of the last ``mutmut run``.

Usage::

    .venv/bin/python bench/mutation_scores.py                 # after `make mutation`
    .venv/bin/python bench/mutation_scores.py --survivors     # and the names of the survivors

Reads the per-file result files that mutmut 3 leaves under ``mutants/``
(``<module>.py.meta``) and prints, per module, the mutants killed (a test
failed or timed out), survived (every test passed), without a test (no test
of the selection runs that function) and not yet checked, and the score
``killed / (killed + survived + no tests)``.  ``mutmut show NAME`` prints the
diff of one mutant; docs/testing.md lists the survivors judged harmless.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# mutmut 3's exit codes (mutmut.stats.status_by_exit_code), grouped for the score.
KILLED = {1, 3, 24, -24, 36, 152, 255}  # a test failed, pytest broke, or a timeout
SURVIVED = {0}
NO_TESTS = {5, 33}
NOT_CHECKED = {None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=REPO / "mutants", help="mutmut's folder")
    parser.add_argument("--survivors", action="store_true", help="list surviving mutants too")
    args = parser.parse_args()
    metas = sorted(args.mutants.rglob("*.py.meta"))
    if not metas:
        print(f"no mutmut results under {args.mutants}: run `make mutation` first", file=sys.stderr)
        return 1
    header = (
        f"{'module':<44} {'killed':>6} {'survived':>8} {'no test':>7} {'unchecked':>9} {'score':>6}"
    )
    print(header)
    totals = [0, 0, 0, 0]
    survivors: dict[str, list[str]] = {}
    for meta in metas:
        module = meta.relative_to(args.mutants).as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = [
            sum(code in group for code in codes.values())
            for group in (KILLED, SURVIVED, NO_TESTS, NOT_CHECKED)
        ]
        survivors[module] = sorted(
            (name for name, code in codes.items() if code in SURVIVED | NO_TESTS),
            key=lambda name: (name.rsplit("_", 1)[0], int(name.rsplit("_", 1)[1])),
        )
        totals = [t + c for t, c in zip(totals, counts, strict=True)]
        print(
            f"{module:<44} {counts[0]:>6} {counts[1]:>8} {counts[2]:>7} {counts[3]:>9} "
            f"{_score(counts):>6}"
        )
    print(
        f"{'all':<44} {totals[0]:>6} {totals[1]:>8} {totals[2]:>7} {totals[3]:>9} "
        f"{_score(totals):>6}"
    )
    if args.survivors:
        for module, names in survivors.items():
            if names:
                print(f"\n{module}: {len(names)} not killed")
                for name in names:
                    print(f"  {name}")
    return 0


def _score(counts: list[int]) -> str:
    """Killed share of the checked mutants, as a percentage."""
    checked = counts[0] + counts[1] + counts[2]
    return f"{100 * counts[0] / checked:.1f}%" if checked else "-"


if __name__ == "__main__":
    sys.exit(main())
