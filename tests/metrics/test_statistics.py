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
