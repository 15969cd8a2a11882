"""Aggregation of per-seed trees into the results schema (mean and 90% CI; baselines under every multiplier)."""

import itertools

import numpy as np
import pytest
from scipy import stats

from medsyn.evaluation.dp_sweep import _no_bound_if_any_seed_unbounded, dp_settings_for_sigma
from medsyn.evaluation.protocol import aggregate_set


def _tree(accuracy, baseline, dp_epsilon=None):
    return {
        "utility": {"baseline_real": {"0x": {"accuracy": baseline}},
                    "data_anonymization": {"1x": {"accuracy": accuracy}, "2x": {"accuracy": accuracy / 2}}},
        "privacy": {"dp_epsilon": dp_epsilon},
        "seed": 0,
    }


def test_bounded_metrics_get_the_bootstrap_interval_and_baselines_repeat_under_every_multiplier():
    # accuracy is bounded in [0, 1] (report/metric_catalog.py VALUE_RANGES): the percentile interval of the
    # bootstrap mean over seeds, here against brute force over all 3^3 ordered resamples (issue 14 item 6)
    values = [0.5, 0.7, 0.65]
    entry = aggregate_set([_tree(v, 0.9) for v in values], kind="generator", notes={"x": "why"})
    accuracy = entry["utility"]["data_anonymization"]["1x"]["accuracy"]
    mean = sum(values) / 3
    means = [sum(sample) / 3 for sample in itertools.product(values, repeat=3)]
    assert accuracy["mean"] == pytest.approx(mean, rel=1e-12)
    assert accuracy["ci90"] == pytest.approx(list(np.quantile(means, [0.05, 0.95])), rel=1e-12)
    assert accuracy["ci_method"] == "bootstrap_percentile"
    low, high = stats.t.interval(0.9, 2, loc=mean, scale=stats.sem(values))
    assert accuracy["ci90"] != pytest.approx([low, high], rel=1e-3)  # no longer the Student-t interval
    baseline = entry["utility"]["baseline_real"]
    assert set(baseline) == {"0x", "1x", "2x"} and baseline["1x"] == baseline["0x"]
    assert entry["kind"] == "generator" and entry["not_computed"] == {"x": "why"}
    assert len(entry["per_seed"]) == 3 and "seed" not in entry  # bookkeeping stays per seed


def test_an_unbounded_epsilon_in_any_seed_nulls_the_sigma():
    trees = [_tree(0.5, 0.9, 3.0), _tree(0.6, 0.9, None)]
    _no_bound_if_any_seed_unbounded(trees)
    entry = aggregate_set(trees, kind="generator", notes={})
    assert entry["privacy"]["dp_epsilon"] is None
    bounded = aggregate_set([_tree(0.5, 0.9, 3.0), _tree(0.6, 0.9, 5.0)], kind="generator", notes={})
    assert bounded["privacy"]["dp_epsilon"]["mean"] == 4.0


def test_dp_settings_take_delta_from_the_training_set_size():
    assert dp_settings_for_sigma(0.3, 1.5, 137) == {"noise_multiplier": 0.3, "max_grad_norm": 1.5, "delta": 1 / 137}
    assert dp_settings_for_sigma(0.0, 1.0, 137) is None  # sigma 0 = plain SGD (paper 001 §3.1)
    with pytest.raises(ValueError, match="num_train"):
        dp_settings_for_sigma(0.3, 1.0, 1)
