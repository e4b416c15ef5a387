"""The evidence rule for model distributions: posterior = prior x likelihood, renormalised."""
from __future__ import annotations

import numpy as np

from geocli.evidence.combine import Evidence
from geocli.evidence.fuse import Likelihood, posterior
from geocli.evidence.gazetteer import default_gazetteer
from geocli.evidence.text_hints import phone_hints

# Belgrade, Zagreb, Split, Ljubljana
LAT = np.array([44.79, 45.81, 43.51, 46.05])
LON = np.array([20.45, 15.98, 16.44, 14.51])
CODES = ["RS", "HR", "HR", "SI"]
PRIOR = np.array([0.5, 0.1, 0.1, 0.2])  # sums to 0.9: the rest lies outside these points


def _post(ev: Evidence) -> np.ndarray:
    return posterior(PRIOR, Likelihood(ev).factors(LAT, LON, CODES))


def test_no_evidence_leaves_the_model_alone():
    lik = Likelihood(Evidence())
    assert lik.empty and np.allclose(lik.factors(LAT, LON, CODES), 1.0)
    assert np.allclose(_post(Evidence()), PRIOR)


def test_a_phone_prefix_moves_mass_to_its_country_and_keeps_the_total():
    post = _post(Evidence(hints=phone_hints("+385 1 234 5678")))
    assert np.isclose(post.sum(), PRIOR.sum())
    assert post[1] / post[0] > PRIOR[1] / PRIOR[0]  # Croatia gained on Serbia
    assert np.isclose(post[1] / post[2], 1.0)  # both Croatian points by the same factor
    assert np.isclose(post[0] / post[3], PRIOR[0] / PRIOR[3])  # the others keep their ratio


def test_a_place_name_lifts_the_points_near_it():
    post = _post(Evidence(matches=default_gazetteer().match("ZAGREB", 0.99)))
    assert post[1] > post[2] and post[1] / post[0] > 1.5 * PRIOR[1] / PRIOR[0]
    assert np.isclose(post[2] / post[3], PRIOR[2] / PRIOR[3])  # Split is 230 km away: untouched


def test_exif_gps_is_a_kernel_around_the_tag():
    post = _post(Evidence(gps=(43.50, 16.45)))
    assert post.argmax() == 2 and np.isclose(post[0] / post[3], PRIOR[0] / PRIOR[3])


def test_a_clue_for_a_place_the_model_gave_no_mass_invents_nothing():
    prior = np.array([0.6, 0.0, 0.0, 0.4])
    post = posterior(prior, Likelihood(Evidence(hints=phone_hints("+385 1 234 5678"))).factors(LAT, LON, CODES))
    assert np.allclose(post, prior)
