"""Assessment tables, figures and the self-contained HTML, from a hand-built aggregated results tree."""

from __future__ import annotations

import base64
import csv
import io

import pytest

from medsyn.metrics.statistics import aggregate_seeds
from medsyn.report.assessment_figures import assessment_radar_scores, save_assessment_radar, save_regime_bars
from medsyn.report.assessment_tables import flatten_for_csv, format_interval, render_assessment_markdown
from medsyn.report.html import markdown_to_html

REGIMES = ("baseline_real", "geometric_da", "data_anonymization", "synthetic_da", "combined_da")


def _seed_tree(accuracy: float, precision: float, ssim: float) -> dict:
    keys = {r: (["0x"] if r in ("baseline_real", "geometric_da") else ["1x", "2x", "3x"]) for r in REGIMES}
    return {
        "utility": {r: {m: {"accuracy": accuracy, "macro_f1": accuracy - 0.1} for m in keys[r]} for r in REGIMES},
        "robustness": {r: {m: {"adversarial_accuracy": accuracy / 2} for m in keys[r]} for r in REGIMES},
        "fidelity": {"effnet_lite0": {"precision": precision, "recall": 0.2, "density": 0.5, "coverage": 0.4,
                                      "fid": 50.0, "kid": 0.01}},
        "privacy": {"ssim_max_paper": ssim, "ssim_max_full": ssim, "dcr_ks": {"pixel": 0.3}, "dcr_area": {"pixel": 0.1}},
    }


def _results() -> dict:
    sets = {}
    for name, base in (("good", 0.8), ("bad", 0.4)):
        tree = aggregate_seeds([_seed_tree(base + d, base / 2 + d, 1.0 - base + d) for d in (0.0, 0.02, 0.04)])
        tree["not_computed"] = {"empirical_epsilon": "folder set"} if name == "bad" else {}
        sets[name] = tree
    return {"synthetic_sets": sets, "metadata": {"seeds": [0, 1, 2], "protocol": {"utility": "top-1"}}}


def test_format_interval():
    assert format_interval({"mean": 0.5, "ci90": [0.25, 0.75], "n_seeds": 3}) == "0.5 [0.25, 0.75]"
    assert format_interval(None) == "-"


def test_radar_min_max_and_privacy_inverted():
    scores = assessment_radar_scores(_results(), extractor="effnet_lite0")
    assert scores["good"]["utility"] == 1.0 and scores["bad"]["utility"] == 0.0
    assert scores["good"]["fidelity"] == 1.0
    # "good" has the lower max-SSIM: more private, so outward after inversion
    assert scores["good"]["privacy"] == 1.0 and scores["bad"]["privacy"] == 0.0
    assert scores["good"]["diversity"] == 1.0 == scores["bad"]["diversity"]  # tie -> nothing to rank


def test_csv_has_every_statistic_once():
    rows = list(csv.DictReader(io.StringIO(flatten_for_csv(_results()))))
    good = {row["metric"]: row for row in rows if row["synthetic_set"] == "good"}
    assert float(good["utility.synthetic_da.2x.accuracy"]["mean"]) == pytest.approx(0.82)
    assert good["privacy.dcr_ks.pixel"]["n_seeds"] == "3"
    assert len(good) == 2 * 2 + 9 * 2 + 2 + 9 + 6 + 4


def test_markdown_tables_and_html_embed_figures(tmp_path):
    results = _results()
    save_regime_bars(tmp_path / "u.png", results, section="utility", metric="accuracy")
    save_assessment_radar(tmp_path / "r.png", results, extractor="effnet_lite0")
    markdown = render_assessment_markdown(results, figures={"Utility": "u.png", "Radar": "r.png"})
    assert "| Data Anonymization | good |" in markdown and "| Baseline Real | - |" in markdown
    assert "FID ↓ [effnet_lite0]" in markdown
    assert "empirical_epsilon" in markdown and "folder set" in markdown
    page = markdown_to_html(markdown, base_dir=tmp_path, title="t")
    assert page.count("<table>") == 3
    embedded = page.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(embedded) == (tmp_path / "u.png").read_bytes()
    with pytest.raises(FileNotFoundError, match="missing.png"):
        markdown_to_html("![x](missing.png)", base_dir=tmp_path, title="t")


def test_html_escapes_text(tmp_path):
    page = markdown_to_html("# a <b>\n\nx < y & **z**", base_dir=tmp_path, title="t")
    assert "<h1>a &lt;b&gt;</h1>" in page and "x &lt; y &amp; <strong>z</strong>" in page


def test_radar_has_a_sampling_speed_axis_only_when_every_set_has_a_generator():
    results = _results()
    assert "sampling speed" not in assessment_radar_scores(results, extractor="effnet_lite0")["good"]
    results["synthetic_sets"]["good"]["sampling_speed"] = {"mean": 10.0, "ci90": [9.0, 11.0], "n_seeds": 3}
    assert "sampling speed" not in assessment_radar_scores(results, extractor="effnet_lite0")["bad"]
    results["synthetic_sets"]["bad"]["sampling_speed"] = {"mean": 1000.0, "ci90": [900.0, 1100.0], "n_seeds": 3}
    scores = assessment_radar_scores(results, extractor="effnet_lite0")
    assert scores["bad"]["sampling speed"] == 1.0 and scores["good"]["sampling speed"] == 0.0
    assert len(scores["good"]) == 6
