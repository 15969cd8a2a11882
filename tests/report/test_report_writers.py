"""The results schema (validate_results, write_results, the CSV), the metric catalogue and the one radar."""

import csv
import io
import json

import pytest

from medsyn.report.metric_catalog import RADAR_AXES, describe_metric, metric_name_of
from medsyn.report.radar import radar_scores, save_radar
from medsyn.report.results import SCHEMA_VERSION, flatten_for_csv, validate_results, write_results

DOCUMENTS = ["assessment_results", "quickstart_results", "dp_sweep_results"]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_hand_built_documents_validate(document, request):
    validate_results(request.getfixturevalue(document))


@pytest.mark.parametrize("version, found", [(None, "found no schema_version"), (1, "found schema_version 1"),
                                            ("2", "found schema_version '2'"), (True, "found schema_version True")])
def test_schema_version_must_be_2(quickstart_results, version, found):
    if version is None:
        del quickstart_results["schema_version"]
    else:
        quickstart_results["schema_version"] = version
    with pytest.raises(ValueError, match=f"expected schema_version {SCHEMA_VERSION}, {found}"):
        validate_results(quickstart_results)


def test_a_models_schema_document_is_refused_by_its_version():
    with pytest.raises(ValueError, match="expected schema_version 2, found no schema_version"):
        validate_results({"models": {"cvae": {"sampling_speed": {"value": 1.0}}}, "metadata": {}})


CVAE = r"results\['synthetic_sets'\]\['cvae'\]"


@pytest.mark.parametrize("path, value, message", [
    (("utility", "synthetic_da", "2x", "accuracy", "mean"), float("nan"),
     CVAE + r"\['utility'\]\['synthetic_da'\]\['2x'\]\['accuracy'\]\.mean must be a finite number"),
    (("fidelity", "effnet_lite0", "fid", "ci90"), [1.0, float("inf")],
     CVAE + r"\['fidelity'\]\['effnet_lite0'\]\['fid'\]\.ci90 must be \[low, high\]"),
    (("privacy", "dcr_ks", "pixel", "ci90"), [0.4, 0.2], r"\['dcr_ks'\]\['pixel'\]\.ci90 must be \[low, high\] with finite low <= high"),
    (("sampling_speed", "n_seeds"), 0, CVAE + r"\['sampling_speed'\]\.n_seeds must be a positive integer"),
    (("sampling_speed", "n_seeds"), True, r"\.n_seeds must be a positive integer, got True"),
    (("sampling_speed", "mean"), "fast", CVAE + r"\['sampling_speed'\]\.mean must be a finite number"),
    (("privacy", "ssim_max_paper"), None, CVAE + r"\['privacy'\]\['ssim_max_paper'\] must be a statistic"),
    (("privacy", "ssim_max_paper", "median"), 0.5, r"\['ssim_max_paper'\] must be a statistic with exactly the keys"),
    (("fidelity", "effnet_lite0", "sharpness"), {"mean": 1.0, "ci90": [1.0, 1.0], "n_seeds": 3},
     CVAE + r"\['fidelity'\]\['effnet_lite0'\]\['sharpness'\]: .*'fidelity.sharpness' is not in the metric catalogue"),
    (("utility", "mixup"), {"1x": {"accuracy": {"mean": 1.0, "ci90": [1.0, 1.0], "n_seeds": 3}}},
     r"\['mixup'\]\['1x'\]\['accuracy'\]: utility.mixup.1x.accuracy: unknown regime 'mixup'"),
    (("robustness", "synthetic_da", "two"), {"adversarial_accuracy": {"mean": 0.1, "ci90": [0.1, 0.1], "n_seeds": 3}},
     r"multiplier key 'two' is not of the form '<n>x'"),
    (("kind",), "zip", CVAE + r"\['kind'\] must be one of \['generator', 'checkpoint', 'folder'\], got 'zip'"),
    (("scores",), {}, CVAE + r" has unknown keys \['scores'\]"),
    (("dp",), {"sigma": 0.0, "max_grad_norm": 1.0, "delta": None}, CVAE + r" has 'dp' settings but the workflow is 'assessment'"),
    (("per_seed", 0, "privacy", "ssim_max_paper"), float("nan"),
     CVAE + r"\['per_seed'\]\[0\]\['privacy'\]\['ssim_max_paper'\] must be a finite number or a string"),
    (("per_seed", 1, "seed"), None, CVAE + r"\['per_seed'\]\[1\]\['seed'\] is null; only privacy.dp_epsilon may be null"),
    (("not_computed", "fid"), 3, CVAE + r"\['not_computed'\] must map metric names to reason strings"),
])
def test_validation_names_the_key_path_of_the_first_bad_entry(assessment_results, path, value, message):
    node = assessment_results["synthetic_sets"]["cvae"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError, match=message):
        validate_results(assessment_results)


def test_validation_of_the_document_level(assessment_results, dp_sweep_results):
    with pytest.raises(ValueError, match=r"results\['workflow'\] must be one of \['assessment', 'quickstart', 'dp_sweep'\]"):
        validate_results({**assessment_results, "workflow": "train"})
    with pytest.raises(ValueError, match=r"results\['synthetic_sets'\] must be a non-empty mapping"):
        validate_results({**assessment_results, "synthetic_sets": {}})
    with pytest.raises(ValueError, match=r"unknown top-level keys \['models'\]"):
        validate_results({**assessment_results, "models": {}})
    with pytest.raises(ValueError, match=r"results\['metadata'\]\['notes'\] must be a list of strings"):
        validate_results({**assessment_results, "metadata": {"notes": "one"}})
    del dp_sweep_results["synthetic_sets"]["sigma_2"]["dp"]
    with pytest.raises(ValueError, match=r"\['sigma_2'\] has no 'dp' settings; every set of a dp_sweep has them"):
        validate_results(dp_sweep_results)


def test_dp_epsilon_may_be_null_and_only_it(dp_sweep_results):
    sets = dp_sweep_results["synthetic_sets"]
    assert sets["sigma_0"]["privacy"]["dp_epsilon"] is None and sets["sigma_0"]["per_seed"][0]["privacy"]["dp_epsilon"] is None
    validate_results(dp_sweep_results)
    sets["sigma_0"]["dp"]["sigma"] = -1.0
    with pytest.raises(ValueError, match=r"\['sigma_0'\]\['dp'\]\['sigma'\] must be a finite number >= 0"):
        validate_results(dp_sweep_results)


def test_write_results_round_trip_and_csv(tmp_path, quickstart_results):
    paths = write_results(tmp_path, quickstart_results)
    assert json.loads(paths["json"].read_text()) == quickstart_results
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert list(rows[0]) == ["synthetic_set", "metric", "mean", "ci90_low", "ci90_high", "n_seeds"]
    cvae = {row["metric"]: row for row in rows if row["synthetic_set"] == "cvae"}
    # utility: baseline_real at 0x and 1x, data_anonymization at 1x, 2 metrics each; 5 fidelity; 2 privacy; speed
    assert len(cvae) == 3 * 2 + 5 + 2 + 1 and len(rows) == 2 * len(cvae)
    assert float(cvae["utility.data_anonymization.1x.accuracy"]["mean"]) == 0.7
    assert cvae["fidelity.effnet_lite0.fid"]["n_seeds"] == "1"
    assert "sampling_speed" in cvae and not any(metric.startswith("per_seed") for metric in cvae)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.json"]


def test_csv_leaves_out_the_null_dp_epsilon(dp_sweep_results):
    rows = list(csv.DictReader(io.StringIO(flatten_for_csv(dp_sweep_results))))
    epsilon = {row["synthetic_set"]: float(row["mean"]) for row in rows if row["metric"] == "privacy.dp_epsilon"}
    assert epsilon == {"sigma_2": 0.5, "sigma_0.5": 8.0}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None, "0.5", True])
def test_a_bad_statistic_is_refused_before_anything_is_written(tmp_path, quickstart_results, bad):
    quickstart_results["synthetic_sets"]["ddpm"]["fidelity"]["effnet_lite0"]["fid"]["mean"] = bad
    with pytest.raises(ValueError, match=r"\['ddpm'\]\['fidelity'\]\['effnet_lite0'\]\['fid'\]\.mean"):
        write_results(tmp_path, quickstart_results)
    assert list(tmp_path.iterdir()) == []


def test_catalogue_names_of_key_paths():
    assert metric_name_of("fidelity.inception_v3.fid") == "fidelity.fid"
    assert metric_name_of("utility.combined_da.3x.macro_f1") == "utility.macro_f1"
    assert metric_name_of("privacy.dcr_area.effnet_lite0") == "privacy.dcr_area"
    assert metric_name_of("fidelity.inception_score.domain_baseline_real") == "fidelity.inception_score"
    assert describe_metric("fidelity.effnet_lite0.kid").higher_is_better is False
    assert describe_metric("sampling_speed").unit == "samples/s"
    with pytest.raises(ValueError, match="expected privacy.dcr_ks.<space>"):
        metric_name_of("privacy.dcr_ks")
    with pytest.raises(ValueError, match="expected fidelity.<extractor>.<metric>"):
        describe_metric("fidelity")
    with pytest.raises(ValueError, match="'sharpness' is not in the metric catalogue"):
        describe_metric("sharpness")


def test_radar_axes_take_their_direction_from_the_catalogue():
    assert [axis for axis, d in RADAR_AXES.items() if not d.higher_is_better] == ["privacy"]
    assert all(describe_metric(d.metric) for d in RADAR_AXES.values())


def test_radar_min_max_against_hand_computed_scores(assessment_results):
    scores = radar_scores(assessment_results, extractor="effnet_lite0")
    # sampling speed: the folder set has none, so the axis is left out
    assert list(scores["cvae"]) == ["fidelity", "diversity", "utility", "robustness", "privacy"]
    expected = {  # raw values in the comments, (v - min) / (max - min); privacy inverted
        "cvae": {"fidelity": 0.0, "utility": 2 / 3, "robustness": 1.0, "privacy": 0.0},  # 0.2, 4.1/6, 0.3, 0.9
        "ddpm": {"fidelity": 1.0, "utility": 1.0, "robustness": 0.0, "privacy": 1.0},  # 0.8, 4.7/6, 0.1, 0.3
        "external": {"fidelity": 0.5, "utility": 0.0, "robustness": 0.5, "privacy": 0.75},  # 0.5, 2.9/6, 0.2, 0.45
    }
    for name, axes in expected.items():
        for axis, value in axes.items():
            assert scores[name][axis] == pytest.approx(value), (name, axis)
        assert scores[name]["diversity"] == 1.0  # every set has recall 0.5: a tie, nothing to rank


def test_radar_uses_the_named_extractor_and_speed_when_every_set_has_it(assessment_results):
    del assessment_results["synthetic_sets"]["external"]
    scores = radar_scores(assessment_results, extractor="inception_v3")
    assert scores["cvae"]["sampling speed"] == 1.0 and scores["ddpm"]["sampling speed"] == 0.0  # 1000 vs 10
    assert "diversity" not in scores["cvae"]  # inception_v3 has no recall here
    assert scores["ddpm"]["fidelity"] == 1.0  # 0.4 vs 0.1 on inception_v3


def test_radar_of_a_quickstart_leaves_out_the_missing_robustness(quickstart_results):
    scores = radar_scores(quickstart_results, extractor="effnet_lite0")
    assert list(scores["cvae"]) == ["fidelity", "diversity", "utility", "privacy", "sampling speed"]
    assert scores["cvae"]["utility"] == 0.0 and scores["ddpm"]["utility"] == 1.0  # 0.7 vs 0.8, baselines ignored
    assert scores["cvae"]["privacy"] == 1.0  # 0.5 is the lower max-SSIM


def test_radar_with_no_common_axis_is_an_error(dp_sweep_results):
    with pytest.raises(ValueError, match="no radar axis is present in every synthetic set"):
        radar_scores({**dp_sweep_results, "synthetic_sets": {
            name: {"kind": "folder"} for name in dp_sweep_results["synthetic_sets"]}}, extractor="effnet_lite0")


def test_save_radar_writes_a_png(tmp_path, assessment_results):
    path = save_radar(tmp_path / "figures" / "radar.png", assessment_results, extractor="effnet_lite0", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["radar.png"]
