"""StageCosts: seconds add up per stage, the peak RSS is the process's high-water mark, the report table."""

from __future__ import annotations

import subprocess
import sys
import time

from medsyn.evaluation.stage_costs import StageCosts, peak_rss_bytes
from medsyn.report.cost_table import cost_table_lines


def test_a_stage_entered_twice_adds_up_its_seconds_and_calls():
    costs = StageCosts()
    for _ in range(2):
        with costs.stage("sleep"):
            time.sleep(0.02)
    with costs.stage("nothing"):
        pass
    stages = costs.as_metadata()["stages"]
    assert list(stages) == ["sleep", "nothing"]
    assert stages["sleep"]["calls"] == 2 and stages["sleep"]["seconds"] >= 0.04
    assert stages["nothing"]["seconds"] < stages["sleep"]["seconds"]


def test_a_failing_stage_is_still_recorded():
    costs = StageCosts()
    try:
        with costs.stage("fails"):
            raise KeyError("x")
    except KeyError:
        pass
    assert costs.as_metadata()["stages"]["fails"]["calls"] == 1


def test_peak_rss_rises_by_what_a_stage_allocates():
    # a fresh process, so that no earlier test's high-water mark hides the allocation
    script = (
        "import numpy as np\n"
        "from medsyn.evaluation.stage_costs import StageCosts, peak_rss_bytes\n"
        "before = peak_rss_bytes()\n"
        "costs = StageCosts()\n"
        "with costs.stage('allocate'):\n"
        "    block = np.ones(300 * 2**20 // 8)\n"
        "print(costs.as_metadata()['stages']['allocate']['peak_rss_bytes'] - before)\n"
    )
    grown = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    assert grown >= 290 * 2**20
    assert peak_rss_bytes() > 0


def test_cost_table_lists_stages_by_time_and_is_absent_without_costs():
    metadata = {"wall_seconds": 10.0, "costs": {
        "stages": {"fast": {"seconds": 1.0, "calls": 1, "peak_rss_bytes": 2**20},
                   "slow": {"seconds": 3.0, "calls": 2, "peak_rss_bytes": 3 * 2**20}},
        "peak_rss_bytes": 5 * 2**20, "peak_rss_children_bytes": 0}}
    lines = cost_table_lines(metadata)
    rows = [line for line in lines if line.startswith("| ") and "stage" not in line]
    assert rows == ["| slow | 3.0 | 75% | 2 | 3 |", "| fast | 1.0 | 25% | 1 | 1 |"]
    assert any("Peak RSS of the process: 5 MiB" in line for line in lines)
    assert cost_table_lines({"wall_seconds": 1.0}) == []
