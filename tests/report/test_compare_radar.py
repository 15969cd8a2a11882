"""report/compare_radar.normalise_pooled: paper 000 Fig. 7's min-max over every model x data set value together
(not within one run), against hand-computed numbers; privacy inverted; a constant axis scores 1.0; bad input
named."""

from __future__ import annotations

import pytest

from medsyn.report.compare_radar import normalise_pooled

# 2 models x 2 data sets; fidelity (precision, higher is better), privacy (max-SSIM, lower is better)
VALUES = {
    "kvasir": {"vae": {"fidelity": 0.2, "privacy": 0.9, "sampling speed": 5.0},
               "dm": {"fidelity": 0.6, "privacy": 0.5, "sampling speed": 5.0}},
    "corn": {"vae": {"fidelity": 0.4, "privacy": 0.3, "sampling speed": 5.0},
             "dm": {"fidelity": 1.0, "privacy": 0.1, "sampling speed": 5.0}},
}


def test_min_max_is_over_models_and_data_sets_together():
    pooled = normalise_pooled(VALUES, ["vae", "dm"], ["fidelity", "privacy"])
    # fidelity: low 0.2, high 1.0 over all four values -> cells kvasir 0, 0.5; corn 0.25, 1.0
    assert pooled.bounds["fidelity"] == (0.2, 1.0)
    assert pooled.cells["kvasir"]["vae"]["fidelity"] == pytest.approx(0.0)
    assert pooled.cells["kvasir"]["dm"]["fidelity"] == pytest.approx(0.5)
    assert pooled.cells["corn"]["vae"]["fidelity"] == pytest.approx(0.25)
    assert pooled.cells["corn"]["dm"]["fidelity"] == pytest.approx(1.0)
    # the model's score is the mean over data sets: vae (0 + 0.25) / 2, dm (0.5 + 1) / 2. Normalised within
    # each data set alone it would be vae 0, dm 1.
    assert pooled.scores["vae"]["fidelity"] == pytest.approx(0.125)
    assert pooled.scores["dm"]["fidelity"] == pytest.approx(0.75)


def test_lower_is_better_axis_is_inverted():
    pooled = normalise_pooled(VALUES, ["vae", "dm"], ["privacy"])
    # low 0.1, high 0.9: 1 - (v - 0.1) / 0.8 -> kvasir vae 0, dm 0.5; corn vae 0.75, dm 1
    assert pooled.bounds["privacy"] == (0.1, 0.9)
    assert pooled.cells["kvasir"]["vae"]["privacy"] == pytest.approx(0.0)
    assert pooled.cells["corn"]["vae"]["privacy"] == pytest.approx(0.75)
    assert pooled.scores["vae"]["privacy"] == pytest.approx(0.375)
    assert pooled.scores["dm"]["privacy"] == pytest.approx(0.75)


def test_normalised_mean_equals_mean_of_normalised_cells():
    # the paper averages over data sets first, then normalises with the pooled min / max: the same numbers
    pooled = normalise_pooled(VALUES, ["vae", "dm"], ["fidelity"])
    low, high = pooled.bounds["fidelity"]
    for model in ("vae", "dm"):
        mean = sum(VALUES[d][model]["fidelity"] for d in VALUES) / len(VALUES)
        assert pooled.scores[model]["fidelity"] == pytest.approx((mean - low) / (high - low))


def test_a_constant_axis_scores_one_everywhere():
    pooled = normalise_pooled(VALUES, ["vae", "dm"], ["sampling speed"])
    assert pooled.scores == {"vae": {"sampling speed": 1.0}, "dm": {"sampling speed": 1.0}}


def test_models_not_drawn_do_not_move_the_bounds():
    values = {label: {**sets, "other": {"fidelity": 100.0}} for label, sets in VALUES.items()}
    assert normalise_pooled(values, ["vae", "dm"], ["fidelity"]).bounds["fidelity"] == (0.2, 1.0)


def test_a_missing_cell_and_an_unknown_axis_are_named():
    values = {"kvasir": VALUES["kvasir"], "corn": {"vae": {"fidelity": None}, "dm": VALUES["corn"]["dm"]}}
    with pytest.raises(ValueError, match=r"^corn/vae: no value on the fidelity axis"):
        normalise_pooled(values, ["vae", "dm"], ["fidelity"])
    with pytest.raises(ValueError, match=r"unknown radar axes \['speed'\]"):
        normalise_pooled(VALUES, ["vae"], ["speed"])
    with pytest.raises(ValueError, match="at least one data set, one model and one axis"):
        normalise_pooled(VALUES, [], ["fidelity"])
