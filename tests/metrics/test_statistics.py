"""mean_ci90 against scipy.stats.t.interval and a t-table value; aggregate_seeds over nested results."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats

from medsyn.metrics.statistics import aggregate_seeds, mean_ci90


@pytest.mark.parametrize(
    "values", [[0.81, 0.84, 0.79], [1.0, 2.0], [3.5, -1.0, 2.25, 7.0, 0.0], list(range(30))]
)
def test_matches_scipy_t_interval(values):
    result = mean_ci90(values)
    array = np.asarray(values, dtype=np.float64)
    low, high = scipy.stats.t.interval(0.90, len(array) - 1, loc=array.mean(), scale=scipy.stats.sem(array))
    assert result["mean"] == pytest.approx(array.mean(), abs=1e-12)
    assert result["ci90"] == pytest.approx([low, high], abs=1e-12)
    assert result["n_seeds"] == len(values)


def test_hand_computed_three_seeds():
    # mean 2, s = 1, t_{0.95, 2} = 2.919986 (any t table): half width 2.919986 / sqrt(3) = 1.685854
    result = mean_ci90([1.0, 2.0, 3.0])
    assert result["mean"] == 2.0
    assert result["ci90"] == pytest.approx([2.0 - 1.685854, 2.0 + 1.685854], abs=1e-6)


def test_degenerate_cases():
    assert mean_ci90([0.7]) == {"mean": 0.7, "ci90": [0.7, 0.7], "n_seeds": 1}
    assert mean_ci90(np.array([0.5, 0.5, 0.5])) == {"mean": 0.5, "ci90": [0.5, 0.5], "n_seeds": 3}
    json.dumps(mean_ci90([1, 2, 4]))


@pytest.mark.parametrize(
    "values, match",
    [
        ([], "empty"),
        ([1.0, math.nan], "NaN"),
        ([1.0, math.inf], "NaN or inf"),
        ([[1.0, 2.0]], "1-d"),
        (["a", "b"], "numbers"),
    ],
)
def test_bad_input(values, match):
    with pytest.raises(ValueError, match=match):
        mean_ci90(values)


def test_aggregate_seeds_nested():
    runs = [
        {"baseline_real": {"0x": {"accuracy": a, "macro_f1": f, "arch": "cnn4"}}, "steps": 5}
        for a, f in [(0.8, 0.7), (0.9, 0.75), (0.85, 0.8)]
    ]
    summary = aggregate_seeds(runs)
    leaf = summary["baseline_real"]["0x"]
    assert leaf["accuracy"] == mean_ci90([0.8, 0.9, 0.85])
    assert leaf["macro_f1"] == mean_ci90([0.7, 0.75, 0.8])
    assert leaf["arch"] == "cnn4"
    assert summary["steps"] == {"mean": 5.0, "ci90": [5.0, 5.0], "n_seeds": 3}
    json.dumps(summary)


def test_aggregate_seeds_errors_name_the_key():
    with pytest.raises(ValueError, match=r"runs\[1\] has keys"):
        aggregate_seeds([{"a": {"x": 1.0}}, {"a": {"x": 1.0}, "b": 2.0}])
    with pytest.raises(ValueError, match=r"a\.x: values contain NaN"):
        aggregate_seeds([{"a": {"x": 1.0}}, {"a": {"x": math.nan}}])
    with pytest.raises(ValueError, match=r"a\.arch: values differ"):
        aggregate_seeds([{"a": {"arch": "cnn4"}}, {"a": {"arch": "vgg16"}}])
    with pytest.raises(ValueError, match="non-empty"):
        aggregate_seeds([])


# --- bounded metrics: bootstrap percentile interval inside the range (issue 14 item 6) ---------------------


def _exact_bootstrap_interval(values):
    """Brute force oracle: every ordered resample, the percentile interval of their means."""
    import itertools

    means = [float(np.mean(sample)) for sample in itertools.product(values, repeat=len(values))]
    return np.quantile(means, [0.05, 0.95])


@pytest.mark.parametrize("values", [[0.81, 0.84, 0.79], [0.2, 0.9], [0.5, 0.1, 0.3, 0.7, 0.0]])
def test_bounded_interval_matches_brute_force_bootstrap(values):
    result = mean_ci90(values, value_range=(0.0, 1.0))
    assert result["ci_method"] == "bootstrap_percentile"
    assert result["mean"] == pytest.approx(np.mean(values), abs=1e-12)
    assert result["ci90"] == pytest.approx(_exact_bootstrap_interval(values), abs=1e-12)
    assert result["n_seeds"] == len(values)


def test_bounded_interval_many_seeds_matches_scipy_bootstrap():
    values = np.random.default_rng(3).uniform(0.6, 1.0, size=20)
    result = mean_ci90(values, value_range=(0.0, 1.0))
    oracle = scipy.stats.bootstrap((values,), np.mean, confidence_level=0.90, method="percentile",
                                   n_resamples=20000, random_state=1).confidence_interval
    # two Monte Carlo bootstraps of 20000 resamples: quantiles agree to well under the interval's width
    width = oracle.high - oracle.low
    assert result["ci90"][0] == pytest.approx(oracle.low, abs=0.05 * width)
    assert result["ci90"][1] == pytest.approx(oracle.high, abs=0.05 * width)


def test_the_accuracy_that_left_its_range_now_stays_inside():
    # the t interval of these seeds is 0.9958 [0.9871, 1.0046]: above 1, impossible for an accuracy
    assert mean_ci90([0.99, 1.0, 0.9975])["ci90"][1] > 1.0
    low, high = mean_ci90([0.99, 1.0, 0.9975], value_range=(0.0, 1.0))["ci90"]
    assert 0.99 <= low <= high <= 1.0


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0), (0.0, math.inf), (1.0, math.inf)])
def test_no_bounded_interval_leaves_its_range_property(value_range):
    rng = np.random.default_rng(14)
    low, high = value_range
    top = high if math.isfinite(high) else low + 1e6
    for trial in range(400):
        count = int(rng.integers(1, 12))
        kind = trial % 4
        if kind == 0:  # anywhere in the range
            values = rng.uniform(low, top, size=count)
        elif kind == 1:  # all equal
            values = np.full(count, rng.uniform(low, top))
        elif kind == 2:  # at the bounds
            values = rng.choice([low, top], size=count)
        else:  # crowded at one bound, where a t interval leaves the range
            values = np.clip(top - rng.exponential(1e-3, size=count), low, top)
        result = mean_ci90(values, value_range=value_range)
        ci_low, ci_high = result["ci90"]
        assert low <= ci_low <= ci_high <= high, (values, result)
        slack = 1e-12 * max(1.0, abs(result["mean"]))  # the mean and the quantiles round differently
        assert ci_low - slack <= result["mean"] <= ci_high + slack, (values, result)
        assert values.min() <= ci_low and ci_high <= values.max()


def test_bounded_degenerate_cases():
    assert mean_ci90([0.7], value_range=(0, 1)) == {
        "mean": 0.7, "ci90": [0.7, 0.7], "n_seeds": 1, "ci_method": "bootstrap_percentile"}
    assert mean_ci90([1.0, 1.0, 1.0], value_range=(0, 1))["ci90"] == [1.0, 1.0]
    assert mean_ci90([0.1] * 9, value_range=(0, 1))["ci90"] == [0.1, 0.1]


@pytest.mark.parametrize(
    "value_range, values, match",
    [
        ((0.0, 1.0), [0.5, 1.2], r"outside the metric's range \[0.0, 1.0\]"),
        ((1.0, 0.0), [0.5], "low < high"),
        (("a", 1.0), [0.5], r"value_range must be \(low, high\) numbers"),
        ((0.0,), [0.5], r"value_range must be \(low, high\)"),
    ],
)
def test_bounded_bad_input(value_range, values, match):
    with pytest.raises(ValueError, match=match):
        mean_ci90(values, value_range=value_range)


def test_aggregate_seeds_takes_ranges_by_key_path():
    runs = [{"utility": {"a": {"0x": {"accuracy": a, "loss": a * 3}}}} for a in (0.99, 1.0, 0.9975)]
    seen = []

    def ranges(path):
        seen.append(path)
        return (0.0, 1.0) if path.endswith("accuracy") else None

    leaf = aggregate_seeds(runs, value_range_of=ranges)["utility"]["a"]["0x"]
    assert leaf["accuracy"] == mean_ci90([0.99, 1.0, 0.9975], value_range=(0.0, 1.0))
    assert leaf["loss"] == mean_ci90([a * 3 for a in (0.99, 1.0, 0.9975)])  # unbounded: Student-t, no ci_method
    assert sorted(seen) == ["utility.a.0x.accuracy", "utility.a.0x.loss"]
    with pytest.raises(ValueError, match=r"utility\.a\.0x\.accuracy: values \[1\.5\] lie outside"):
        aggregate_seeds([{"utility": {"a": {"0x": {"accuracy": 1.5}}}}], value_range_of=ranges)


def test_catalogue_ranges_reach_the_aggregation():
    from medsyn.report.metric_catalog import METRIC_CATALOG, VALUE_RANGES, value_range_of

    assert set(VALUE_RANGES) <= set(METRIC_CATALOG)
    assert value_range_of("utility.synthetic_da.2x.accuracy") == (0.0, 1.0)
    assert value_range_of("fidelity.effnet_lite0.precision") == (0.0, 1.0)
    assert value_range_of("privacy.dcr_ks.pixel") == (0.0, 1.0)
    assert value_range_of("fidelity.effnet_lite0.kid") is None  # unbiased KID can be negative
