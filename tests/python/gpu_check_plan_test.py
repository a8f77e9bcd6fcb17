#!/usr/bin/env python3
"""The budgeted GPU check's arithmetic (scripts/gpu_check_plan.py): for every budget, the stages
that run fit in it with their kill grace and the reserve; stages run in order of value (one is
never skipped while a later one runs); the default budget runs the tests, the benchmarks and the
PyTorch anchor within one 9-minute command."""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import gpu_check_plan as p  # noqa: E402


class PlanTest(unittest.TestCase):
    def test_every_budget_fits(self):
        for budget in range(0, 1801):
            plan = p.plan(budget)
            used = sum(give + p.KILL_GRACE for _, give in plan if give)
            self.assertLessEqual(used + (p.RESERVE if used else 0), budget, (budget, plan))

    def test_value_order(self):
        for budget in range(0, 1801, 7):
            gives = [give for _, give in p.plan(budget)]
            ran = [g > 0 for g in gives]
            # A stage skipped for time is followed only by skipped stages or by ones whose least
            # time is smaller (they may still fit): never a stage that needs more than it did.
            for i, (name, _, least) in enumerate(p.STAGES):
                if not ran[i]:
                    for j in range(i + 1, len(p.STAGES)):
                        if ran[j]:
                            self.assertLess(p.STAGES[j][2], least, (budget, name, p.STAGES[j][0]))

    def test_default_budget_runs_what_matters_most(self):
        plan = dict(p.plan(p.DEFAULT_BUDGET))
        for name in ("smoke", "gpu-tests", "gpu-bench", "torch-reference"):
            self.assertGreater(plan[name], 0, plan)
        self.assertLessEqual(p.DEFAULT_BUDGET, 600 - 30)  # the device's 10-minute limit, with start-up

    def test_limit_follows_what_was_spent(self):
        self.assertEqual(p.limit(540, 0, "smoke"), 60)
        self.assertEqual(p.limit(540, 500, "gpu-tests"), 0)
        self.assertEqual(p.limit(540, 400, "gpu-bench"), 110)

    def test_command_line(self):
        script = os.path.join(HERE, "..", "..", "scripts", "gpu_check_plan.py")
        out = subprocess.run([sys.executable, script, "limit", "--budget", "540", "--spent", "0",
                              "--stage", "gpu-tests"], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "180")
        bad = subprocess.run([sys.executable, script, "limit", "--stage", "nothing"],
                             capture_output=True, text=True)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("--stage 'nothing'", bad.stderr)


if __name__ == "__main__":
    unittest.main()
