import math

import pytest

from napari_hnc.pet.params import METHOD_PARAMS, METHODS, ParameterError, SeedParams


def test_defaults_follow_the_issue():
    p = SeedParams()
    assert (p.method, p.threshold, p.percent, p.fraction, p.snap_mm) == ("edge", 2.5, 41.0, 0.5, 7.0)
    assert SeedParams.create().method == "edge" and p.fill_holes and p.max_radius_mm == 200.0
    assert p.upper == math.inf and SeedParams.create("percent").margin_mm == 0.0
    assert SeedParams.create("adaptive").margin_mm == p.shell_mm[1] == SeedParams.create("edge").margin_mm


@pytest.mark.parametrize("method", METHODS)
def test_each_method_takes_its_own_parameters(method):
    name = METHOD_PARAMS[method][0]
    value = (5.0, 15.0) if name == "shell_mm" else 0.3
    assert getattr(SeedParams.create(method, **{name: value}), name) == value


def test_method_names_are_case_insensitive_and_checked():
    assert SeedParams.create(" Adaptive ").method == "adaptive"
    with pytest.raises(ParameterError, match="did you mean 'percent'"):
        SeedParams.create("percnt")


def test_unknown_and_foreign_parameters_say_what_applies():
    with pytest.raises(ParameterError, match="did you mean 'threshold'"):
        SeedParams.create("fixed", treshold=3)
    with pytest.raises(ParameterError, match="'lower' does not apply to method 'fixed'; it takes threshold"):
        SeedParams.create("fixed", lower=3)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "percent", "percent": 140}, "between 0 and 100"),
    ({"method": "adaptive", "fraction": 1.5}, "between 0 and 1"),
    ({"method": "grow", "lower": 5, "upper": 2}, "lower must not exceed upper"),
    ({"method": "adaptive", "shell_mm": (20, 10)}, "inner < outer"),
    ({"method": "fixed", "threshold": "high"}, "must be a number"),
    ({"method": "fixed", "max_radius_mm": -1}, "positive distance"),
])
def test_bad_values_are_refused(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        SeedParams.create(**kwargs)
