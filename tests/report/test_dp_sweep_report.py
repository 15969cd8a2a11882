"""dp_sweep.md and dp_sweep.png from a schema-2 DP-sweep document: one row per set in order of dp.sigma."""

import matplotlib.image
import pytest

from medsyn.report.dp_sweep_figure import save_dp_sweep_figure
from medsyn.report.dp_sweep_tables import dp_sweep_extractor, dp_sweep_series, render_dp_sweep_markdown


def _rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| sigma")]


def test_series_in_sigma_order_with_the_null_epsilon(dp_sweep_results):
    rows = dp_sweep_series(dp_sweep_results, extractor="effnet_lite0")
    assert [(row["name"], row["sigma"]) for row in rows] == [("sigma_0", 0.0), ("sigma_0.5", 0.5), ("sigma_2", 2.0)]
    assert rows[0]["dp_epsilon"] is None and rows[0]["no_privacy"] and not rows[1]["no_privacy"]
    assert rows[1]["dp_epsilon"]["mean"] == 8.0 and rows[2]["utility"]["mean"] == 0.4
    assert rows[0]["fid"]["mean"] == 13.0
    assert all(row["empirical_epsilon_paper_code"] is None and row["empirical_epsilon_with_d"] is None for row in rows)


def test_markdown_rows_and_text(dp_sweep_results):
    report = render_dp_sweep_markdown(dp_sweep_results)
    assert report.startswith("# DP sweep: cvae (paper 001 Fig. 2, Table 1)\n")
    assert ("Data `digits` (embedded digits), 10 training images per class (80 in all), seeds [0, 1, 2], 5 steps "
            "of batch 4, clipping bound C = 1.0.") in report
    assert ("| sigma | FID vs holdout (effnet_lite0) | IS (Baseline Real) | LPIPS | PSNR (dB) | SSIM | seeds |"
            in report)
    assert ("| sigma | epsilon (delta = 1/n_train) | empirical ε worst, paper code | empirical ε worst, with d "
            "| DCR KS | DCR area | DCR area, normalised | utility (accuracy) | seeds |") in report
    assert _rows(report) == [
        "| 0 | 13.00 [12.00, 14.00] | - | - | - | - | 3 |",
        "| 0.5 | 40.00 [39.00, 41.00] | - | - | - | - | 3 |",
        "| 2 | 90.00 [89.00, 91.00] | - | - | - | - | 3 |",
        "| 0 | inf (no privacy) | - | - | - | - | - | 0.900 [0.890, 0.910] | 3 |",
        "| 0.5 | 8.000 [7.200, 8.800] | - | - | - | - | - | 0.700 [0.690, 0.710] | 3 |",
        "| 2 | 0.500 [0.450, 0.550] | - | - | - | - | - | 0.400 [0.390, 0.410] | 3 |",
    ]
    assert "- LPIPS: not computed\n" in report and "- DCR KS: not computed\n" in report
    assert "![every per-sigma metric against sigma](dp_sweep.png)" in report
    assert "Notes:\n- sigma = 0 trains without DP-SGD" in report


def test_empirical_epsilon_columns_when_some_set_has_them(dp_sweep_results, statistic):
    privacy = dp_sweep_results["synthetic_sets"]["sigma_0"]["privacy"]
    privacy["empirical_epsilon_worst_paper_code"] = statistic(2.5, 0.5)
    privacy["empirical_epsilon_worst_with_d"] = statistic(5.0, 1.0)
    privacy["empirical_epsilon_mean_paper_code"] = statistic(-7.0, 1.0)  # a mean is not the sweep's column
    report = render_dp_sweep_markdown(dp_sweep_results, figure_name="f.png")
    assert _rows(report)[3] == ("| 0 | inf (no privacy) | 2.500 [2.000, 3.000] | 5.000 [4.000, 6.000] | - | - | - "
                                "| 0.900 [0.890, 0.910] | 3 |")
    assert _rows(report)[4].split(" | ")[2:4] == ["-", "-"]
    assert "empirical ε worst, paper code: not computed" not in report


def test_extractor_from_metadata_or_the_one_with_fid(dp_sweep_results):
    assert dp_sweep_extractor(dp_sweep_results) == "effnet_lite0"
    del dp_sweep_results["metadata"]["extractor"]
    assert dp_sweep_extractor(dp_sweep_results) == "effnet_lite0"
    dp_sweep_results["synthetic_sets"]["sigma_2"]["fidelity"]["vgg16"] = {
        "fid_holdout": {"mean": 1.0, "ci90": [1.0, 1.0], "n_seeds": 3}}
    with pytest.raises(ValueError, match=r"FID on extractors \['effnet_lite0', 'vgg16'\]; pass extractor="):
        render_dp_sweep_markdown(dp_sweep_results)
    assert "| sigma | FID vs holdout (vgg16) |" in render_dp_sweep_markdown(dp_sweep_results, extractor="vgg16")


def test_refuses_other_workflows_and_unknown_extractors(dp_sweep_results, quickstart_results):
    with pytest.raises(ValueError, match="workflow 'quickstart'; the DP sweep report needs 'dp_sweep'"):
        dp_sweep_series(quickstart_results, extractor="effnet_lite0")
    with pytest.raises(ValueError, match=r"no synthetic set has fidelity.inception_v3.fid_holdout \(extractors present: \['effnet_lite0'\]\)"):
        dp_sweep_series(dp_sweep_results, extractor="inception_v3")
    dp_sweep_results["synthetic_sets"]["sigma_2"]["fidelity"]["effnet_lite0"]["fid_holdout"]["mean"] = float("inf")
    with pytest.raises(ValueError, match=r"\['sigma_2'\]\['fidelity'\]\['effnet_lite0'\]\['fid_holdout'\]\.mean"):
        render_dp_sweep_markdown(dp_sweep_results)


def test_figure_has_an_empirical_panel_only_when_measured(tmp_path, dp_sweep_results, statistic):
    three = save_dp_sweep_figure(tmp_path / "a.png", dp_sweep_results, extractor="effnet_lite0", title="t")
    for entry in dp_sweep_results["synthetic_sets"].values():
        entry["privacy"]["empirical_epsilon_worst_paper_code"] = statistic(-0.5, 0.1)  # signed: may be < 0
        entry["privacy"]["empirical_epsilon_worst_with_d"] = statistic(-1.0, 0.2)
    four = save_dp_sweep_figure(tmp_path / "b.png", dp_sweep_results, extractor="effnet_lite0")
    width_three, width_four = (matplotlib.image.imread(path).shape[1] for path in (three, four))
    # FID, epsilon and utility -> 3 panels in one row; + empirical -> 4: 4.2 inches per panel at 110 dpi
    assert 380 < width_four - width_three < 520
    for entry in dp_sweep_results["synthetic_sets"].values():  # every metric: 12 panels, 4 per row, 3 rows
        for key in ("psnr", "ssim", "lpips"):
            entry.setdefault("fidelity", {}).setdefault("unpaired_set", {})[key] = statistic(1.0, 0.1)
        entry["fidelity"]["inception_score"] = {"domain_baseline_real": statistic(2.0, 0.1)}
        entry["privacy"].update({"dcr_ks": {"pixel": statistic(0.5, 0.1)}, "dcr_area": {"pixel": statistic(2.0, 0.1)},
                                 "dcr_area_normalised": {"pixel": statistic(0.2, 0.1)}})
        entry["privacy"]["empirical_epsilon_worst_with_d"] = statistic(-1.0, 0.2)
    rows = dp_sweep_series(dp_sweep_results, extractor="effnet_lite0")
    assert rows[0]["lpips"]["mean"] == 1.0 and rows[0]["dcr_area_normalised"]["mean"] == 0.2
    every = save_dp_sweep_figure(tmp_path / "c.png", dp_sweep_results, extractor="effnet_lite0")
    height_four, height_every = (matplotlib.image.imread(path).shape[0] for path in (four, every))
    assert 2.5 < height_every / height_four < 3.5
