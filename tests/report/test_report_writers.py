import json
import math

import pytest

from medsyn.report.markdown import render_markdown_report
from medsyn.report.metric_catalog import describe_metric
from medsyn.report.radar import radar_scores, save_radar
from medsyn.report.results import validate_results, write_results


def _results(privacy=(0.9, 0.5, 0.7)):
    models = {}
    for i, name in enumerate(["vae", "gan", "ddpm"]):
        models[name] = {
            "precision_effnet_lite0": {"value": 0.1 * (i + 1), "k": 3},
            "recall_effnet_lite0": {"value": 0.5},
            "fid_effnet_lite0": {"value": 10.0 - i},
            "sampling_speed": {"value": [1000.0, 50.0, 2.0][i]},
            "utility_synthetic_only": {"value": [0.6, 0.7, 0.8][i]},
            "utility_real_baseline": {"value": 0.95},
            "robustness_synthetic_only": {"value": [0.2, 0.1, 0.3][i]},
            "robustness_real_baseline": {"value": 0.05},
            "privacy_ssim_max_paper": {"value": privacy[i], "q": 100, "l": 10},
        }
    return {"models": models, "metadata": {"seed": 0}}


def test_radar_min_max_normalises_and_inverts_privacy():
    scores = radar_scores(_results())
    assert scores["vae"]["fidelity"] == 0.0 and scores["ddpm"]["fidelity"] == 1.0
    # privacy: lower max-SSIM is better -> gan (0.5) best, vae (0.9) worst
    assert scores["gan"]["privacy"] == 1.0 and scores["vae"]["privacy"] == 0.0
    assert math.isclose(scores["ddpm"]["privacy"], 0.5)
    # all equal -> nothing to rank
    assert all(s["diversity"] == 1.0 for s in scores.values())
    assert scores["vae"]["sampling speed"] == 1.0 and scores["ddpm"]["sampling speed"] == 0.0


def test_radar_needs_every_axis():
    results = _results()
    del results["models"]["gan"]["recall_effnet_lite0"]
    with pytest.raises(ValueError, match="recall"):
        radar_scores(results)


def test_write_results_round_trip_and_csv(tmp_path):
    results = _results()
    paths = write_results(tmp_path, results)
    assert json.loads(paths["json"].read_text()) == results
    header, *rows = paths["csv"].read_text().splitlines()
    assert header.split(",")[0] == "model" and "fid_effnet_lite0" in header
    assert [r.split(",")[0] for r in rows] == ["vae", "gan", "ddpm"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.json"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None, "0.5", True])
def test_non_finite_or_non_numeric_values_are_refused_before_writing(tmp_path, bad):
    results = _results()
    results["models"]["gan"]["fid_effnet_lite0"]["value"] = bad
    with pytest.raises(ValueError, match="gan.*fid_effnet_lite0"):
        write_results(tmp_path, results)
    assert list(tmp_path.iterdir()) == []


def test_unknown_metric_is_refused():
    results = _results()
    results["models"]["vae"]["sharpness"] = {"value": 1.0}
    with pytest.raises(ValueError, match="sharpness"):
        validate_results(results)


def test_catalogue_uses_longest_prefix():
    assert describe_metric("utility_synthetic_only").axis == "utility"
    assert "real training split" in describe_metric("utility_real_baseline").meaning
    assert describe_metric("fid_effnet_lite0").higher_is_better is False
    with pytest.raises(ValueError):
        describe_metric("fidelity")


def test_markdown_report_has_table_figure_and_directions(tmp_path):
    results = _results()
    save_radar(tmp_path / "radar.png", radar_scores(results))
    assert (tmp_path / "radar.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = render_markdown_report(results, title="Quickstart", figures={"Radar": "radar.png"})
    assert "| model | precision_effnet_lite0" in text
    assert "| gan | 0.2 |" in text
    assert "![Radar](radar.png)" in text
    assert "- **fid_effnet_lite0** (fidelity+diversity; lower is better)" in text
    assert "- **privacy_ssim_max_paper** (privacy; lower is better)" in text
