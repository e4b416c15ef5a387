"""Calibration of stated probabilities: the fitted curves, the reliability table, the confidence radius."""
import numpy as np
import pytest

from geocli.evaluate.calibration import calibration_summary, expected_calibration_error
from geocli.evidence.calibration import Curve, calibrate_all, claim_of, fit_curves
from geocli.geo.distance import HALF_CIRCUMFERENCE_KM, mass_radius_km


def test_ece_is_zero_when_stated_matches_observed_and_the_gap_otherwise():
    p = [0.25] * 4 + [0.95] * 2
    assert expected_calibration_error(p, [1, 0, 0, 0, 1, 1]) == pytest.approx((2 * 0.05) / 6)
    assert expected_calibration_error([0.9] * 10, [0] * 10) == pytest.approx(0.9)
    assert expected_calibration_error([], []) is None


def test_reliability_table_bins_and_both_targets():
    summary = calibration_summary([0.05, 0.07, 0.93], [3.0, 300.0, 10.0], [True, None, False])
    low, high = summary["bins"]
    assert (low["n"], high["n"]) == (2, 1) and low["within_km"] == 0.5 and low["country"] == 1.0
    assert high["bin"] == [0.9, 1.0] and high["country"] == 0.0
    assert summary["ece_country"] == pytest.approx((abs(0.05 - 1) + abs(0.93 - 0)) / 2)


def test_fitted_curves_bring_overconfident_kinds_down_and_leave_others():
    """A kind right 10% of the time while stating 60% is mapped near 10%; a kind that is honest
    stays near its raw probability; an unmeasured kind is not touched."""
    rng = np.random.default_rng(0)
    examples = [("place:approximate", 0.6, rng.random() < 0.1) for _ in range(200)]
    examples += [("country:ocr:hints", p, rng.random() < p) for p in rng.uniform(0.2, 0.9, 400)]
    curves = fit_curves(examples)
    assert curves["place:approximate"](0.6) == pytest.approx(0.1, abs=0.05)
    assert curves["country:ocr:hints"](0.5) == pytest.approx(0.5, abs=0.08)
    assert calibrate_all(["exif"], [0.8], curves) == [0.8]


def test_few_examples_cannot_swing_a_kind_far_from_the_pooled_curve():
    examples = [("a", p, p > 0.5) for p in np.linspace(0.05, 0.95, 300)] + [("b", 0.5, False)] * 2
    curves = fit_curves(examples)
    assert abs(curves["b"].a - curves["a"].a) < 0.5 and curves["b"].n == 2


def test_calibrated_probabilities_never_add_up_past_one():
    curves = {"x": Curve(a=1.0, b=3.0)}
    out = calibrate_all(["x", "x"], [0.45, 0.45], curves)
    assert sum(out) == pytest.approx(1.0) and out[0] == out[1]


def test_claims():
    assert claim_of("place:exact") == "place" and claim_of("country:ocr:hints") == "country"
    assert claim_of("region") == "country"


def test_mass_radius_is_the_weighted_quantile_of_distance():
    lats, lons = [0.0, 0.0, 0.0], [0.0, 1.0, 10.0]  # 0, ~111, ~1112 km from (0, 0)
    assert mass_radius_km(0, 0, lats, lons, [0.95, 0.03, 0.02]) == 0.0
    assert mass_radius_km(0, 0, lats, lons, [0.5, 0.45, 0.05]) == pytest.approx(111.2, abs=0.5)
    assert mass_radius_km(0, 0, lats, lons, [0.5, 0.3, 0.2]) == pytest.approx(1111.9, abs=2)
    # a distribution holding only 60% of the mass among its points: 90% is never reached nearby
    assert mass_radius_km(0, 0, lats, lons, [0.5, 0.05, 0.05], total=1.0) == HALF_CIRCUMFERENCE_KM
    assert mass_radius_km(0, 0, [0.0], [0.0], [1.0], extent_km=25.0) == 25.0
