"""scripts/compare_results.py: reads every schema into the same canonical numbers and finds any change."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "compare_results.py"
spec = importlib.util.spec_from_file_location("compare_results", SCRIPT)
compare_results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_results)


def _s(value):
    return {"mean": value, "ci90": [value, value], "n_seeds": 1}


QUICKSTART_V1 = {
    "models": {"cvae": {
        "precision_effnet_lite0": {"value": 0.25, "extractor": "effnet_lite0"},
        "fid_effnet_lite0": {"value": 81.5},
        "sampling_speed": {"value": 1234.5},
        "utility_real_baseline": {"value": 0.9},
        "utility_synthetic_only": {"value": 0.4},
        "privacy_ssim_max_paper": {"value": 0.61},
    }},
    "metadata": {"extractor": "effnet_lite0", "wall_seconds": 3.0},
}


def _schema2(fid=81.5):
    per_seed = {"fidelity": {"effnet_lite0": {"precision": 0.25, "fid": fid}},
                "utility": {"baseline_real": {"0x": {"accuracy": 0.9, "macro_f1": 0.88}},
                            "data_anonymization": {"1x": {"accuracy": 0.4, "macro_f1": 0.3}}},
                "privacy": {"ssim_max_paper": 0.61}, "sampling_speed": 999.0}
    return {"schema_version": 2, "workflow": "quickstart", "metadata": {"wall_seconds": 9.0}, "synthetic_sets": {"cvae": {
        "kind": "generator",
        "fidelity": {"effnet_lite0": {"precision": _s(0.25), "fid": _s(fid)}},
        "utility": {"baseline_real": {"0x": {"accuracy": _s(0.9), "macro_f1": _s(0.88)},
                                      "1x": {"accuracy": _s(0.9), "macro_f1": _s(0.88)}},
                    "data_anonymization": {"1x": {"accuracy": _s(0.4), "macro_f1": _s(0.3)}}},
        "privacy": {"ssim_max_paper": _s(0.61)}, "sampling_speed": _s(999.0),
        "not_computed": {}, "per_seed": [per_seed]}}}


def test_the_same_numbers_in_the_new_schema_compare_equal_and_timing_is_ignored():
    differences, additions = compare_results.compare(QUICKSTART_V1, _schema2())
    assert differences == []
    assert "cvae/utility.baseline_real.0x.macro_f1.mean" in additions


def test_one_changed_number_is_found_with_its_key():
    differences, _ = compare_results.compare(QUICKSTART_V1, _schema2(fid=81.50000000000001))
    assert differences and all("fidelity.effnet_lite0.fid" in line for line in differences)


def test_a_missing_number_is_a_difference():
    new = _schema2()
    del new["synthetic_sets"]["cvae"]["privacy"]
    del new["synthetic_sets"]["cvae"]["per_seed"][0]["privacy"]
    differences, _ = compare_results.compare(QUICKSTART_V1, new)
    assert any("ssim_max_paper" in line and "<missing>" in line for line in differences)
