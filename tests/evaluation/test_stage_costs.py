"""StageCosts: seconds add up per stage, the peak RSS is the process's high-water mark, the report table."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from medsyn.evaluation.stage_costs import StageCosts, peak_rss_bytes
from medsyn.report.cost_table import cost_table_lines, work_text


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
    assert rows == ["| slow | 3.0 | 75% | 2 | 3 |  |", "| fast | 1.0 | 25% | 1 | 1 |  |"]
    assert any("Peak RSS of the process: 5 MiB" in line for line in lines)
    assert cost_table_lines({"wall_seconds": 1.0}) == []


def test_a_stage_counts_its_work_across_calls_in_one_unit():
    costs = StageCosts()
    for count in (3, 5):
        with costs.stage("scan") as work:
            work.add(count, "pairs")
    with costs.stage("uncounted"):
        pass
    stages = costs.as_metadata()["stages"]
    assert (stages["scan"]["items"], stages["scan"]["unit"]) == (8, "pairs")
    assert "items" not in stages["uncounted"] and "unit" not in stages["uncounted"]
    with pytest.raises(ValueError, match="counts pairs, not images"):
        with costs.stage("scan") as work:
            work.add(1, "images")
    with pytest.raises(ValueError, match="negative"):
        with costs.stage("other") as work:
            work.add(-1)


def test_work_text_gives_the_rate_from_the_stage_seconds():
    assert work_text({"seconds": 2.0, "items": 9600, "unit": "images"}) == "9,600 images (4,800.0/s)"
    assert work_text({"seconds": 2.0}) == ""
    lines = cost_table_lines({"wall_seconds": 2.0, "costs": {"stages": {
        "features": {"seconds": 2.0, "calls": 1, "peak_rss_bytes": 2**20, "items": 100, "unit": "images"}},
        "peak_rss_bytes": 2**20}})
    assert "| features | 2.0 | 100% | 1 | 1 | 100 images (50.0/s) |" in lines
