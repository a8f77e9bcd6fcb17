#!/usr/bin/env python3
"""The budgeted GPU check's stage plan (scripts/gpu-check.sh --budget SECONDS).

A GPU machine is lent for minutes (one command at most 10 minutes), so the check runs its stages
in order of value and gives each a time limit that what is left of the budget allows: a stage
starts only when its least useful time still fits, and every limit leaves room for the stages'
kill grace and for the report's last lines. Whatever does not fit is skipped "for time" and said
so; `gpu-check.sh --rerun` runs what was skipped or failed in a second, shorter call.

  gpu_check_plan.py limit --budget B --spent S --stage NAME   the stage's limit in seconds (0: skip)
  gpu_check_plan.py plan --budget B                           the whole plan if every stage ran
                                                              to its limit, a line per stage
"""
import argparse
import sys

# (name, nominal seconds, least seconds worth starting), by value: device facts and a smoke
# first, then the GPU tests, the benchmarks with their PyTorch anchor, then the sanitizers.
STAGES = [
    ("smoke", 60, 20),
    ("gpu-tests", 180, 60),
    ("gpu-bench", 200, 60),
    ("torch-reference", 120, 40),
    ("inference-bench", 120, 40),
    ("memcheck", 150, 60),
    ("racecheck", 60, 30),
    ("synccheck", 60, 30),
]
KILL_GRACE = 10  # timeout --kill-after: a stage past its limit may take this much longer
RESERVE = 20     # the summary and the report's last lines
DEFAULT_BUDGET = 540  # one 9-minute command, inside the 10-minute limit


def limit(budget, spent, name):
    """Seconds for stage `name` when `spent` of `budget` are gone; 0 when it does not fit."""
    nominal, least = next((n, l) for s, n, l in STAGES if s == name)
    left = budget - spent - RESERVE - KILL_GRACE
    give = min(nominal, left)
    return give if give >= least else 0


def plan(budget):
    """[(name, limit)] if every stage that runs takes its whole limit and the grace."""
    spent, out = 0, []
    for name, _, _ in STAGES:
        give = limit(budget, spent, name)
        out.append((name, give))
        if give:
            spent += give + KILL_GRACE
    return out


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["limit", "plan"])
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET)
    parser.add_argument("--spent", type=int, default=0)
    parser.add_argument("--stage")
    args = parser.parse_args(argv)
    if args.budget < 0 or args.spent < 0:
        parser.error("--budget and --spent are seconds, not negative")
    if args.what == "limit":
        if args.stage not in [s for s, _, _ in STAGES]:
            parser.error(f"--stage {args.stage!r}: one of {', '.join(s for s, _, _ in STAGES)}")
        print(limit(args.budget, args.spent, args.stage))
    else:
        for name, give in plan(args.budget):
            print(f"{name} {give if give else 'skipped for time'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
