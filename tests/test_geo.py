import numpy as np
import pytest
import torch

from geocli.geo.countries import COASTAL_KM, country, country_at, country_code_at, country_codes_at
from geocli.geo.distance import (
    EARTH_RADIUS_KM, chord_to_km, haversine_km, km_to_chord, mean_coordinate, pairwise_haversine_km,
    to_unit_vectors, validate_coordinates,
)

# Reference great-circle distances on the 6371.0088 km sphere (independently computed with geopy).
CITY_PAIRS = [
    ((51.5074, -0.1278), (48.8566, 2.3522), 343.56),  # London - Paris
    ((40.7128, -74.0060), (34.0522, -118.2437), 3935.76),  # New York - Los Angeles
    ((-33.8688, 151.2093), (51.5074, -0.1278), 16993.93),  # Sydney - London
    ((45.8150, 15.9819), (43.5081, 16.4402), 259.09),  # Zagreb - Split
]


@pytest.mark.parametrize("a,b,km", CITY_PAIRS)
def test_city_pairs(a, b, km):
    assert haversine_km(a[0], a[1], b[0], b[1]) == pytest.approx(km, rel=2e-4)


def test_against_geopy_great_circle():
    import geopy.distance  # a [dev] dependency: the reference must run, not skip
    rng = np.random.default_rng(0)
    lat1, lat2 = rng.uniform(-90, 90, (2, 200))
    lon1, lon2 = rng.uniform(-180, 180, (2, 200))
    ours = haversine_km(lat1, lon1, lat2, lon2)
    ref = [geopy.distance.great_circle((a, b), (c, d), radius=EARTH_RADIUS_KM).km for a, b, c, d in zip(lat1, lon1, lat2, lon2)]
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-6)


def test_edge_cases_antipodes_poles_antimeridian():
    assert haversine_km(0, 0, 0, 0) == 0
    assert haversine_km(0, 0, 0, 180) == pytest.approx(np.pi * EARTH_RADIUS_KM)
    assert haversine_km(90, 0, 90, 123) == pytest.approx(0, abs=1e-9)
    assert haversine_km(0, 179.5, 0, -179.5) == pytest.approx(haversine_km(0, 0, 0, 1))


def test_torch_matches_numpy_and_is_differentiable():
    lat = torch.tensor([10.0, -20.0], requires_grad=True)
    d = haversine_km(lat, torch.tensor([5.0, 6.0]), torch.tensor([11.0, -25.0]), torch.tensor([7.0, 9.0]))
    np.testing.assert_allclose(d.detach().numpy(), haversine_km([10, -20], [5, 6], [11, -25], [7, 9]), rtol=1e-5)
    d.sum().backward()
    assert torch.isfinite(lat.grad).all() and (lat.grad != 0).all()


def test_pairwise_and_chords():
    m = pairwise_haversine_km(np.array([0.0, 10]), np.array([0.0, 0]), np.array([0.0, 0, 20]), np.array([0.0, 1, 0]))
    assert m.shape == (2, 3) and m[0, 0] == 0
    assert m[1, 2] == pytest.approx(haversine_km(10, 0, 20, 0))
    assert chord_to_km(km_to_chord(1234.5)) == pytest.approx(1234.5)
    v = to_unit_vectors([0, 90], [0, 0])
    np.testing.assert_allclose(v, [[1, 0, 0], [0, 0, 1]], atol=1e-12)


def test_mean_coordinate_across_antimeridian():
    lat, lon = mean_coordinate([0, 0], [179, -179])
    assert lat == pytest.approx(0, abs=1e-9) and abs(lon) == pytest.approx(180)


def test_validate_coordinates():
    mask = validate_coordinates([0, 91, np.nan, 45, -90], [0, 0, 0, 181, -180])
    assert mask.tolist() == [True, False, False, False, True]


@pytest.mark.parametrize(
    "lat,lon,code",
    [
        (45.815, 15.982, "HR"),  # Zagreb
        (37.7793, -122.4193, "US"),  # San Francisco
        (43.7384, 7.4246, "MC"),  # Monaco: a small country
        (1.29, 103.85, "SG"),  # Singapore
        (48.8566, 2.3522, "FR"),
        (-33.8688, 151.2093, "AU"),
        (35.6762, 139.6503, "JP"),
    ],
)
def test_country_of_land_points(lat, lon, code):
    assert country_code_at(lat, lon) == code


def test_coast_bay_and_open_ocean():
    assert country_code_at(37.80, -122.44) == "US"  # in San Francisco Bay
    assert country_code_at(43.40, 16.10) == "HR"  # Adriatic, between islands
    assert country_code_at(0.0, -30.0) is None  # mid-Atlantic
    assert country_code_at(-40.0, -120.0) is None  # South Pacific
    assert country_code_at(95, 0) is None  # invalid


def test_country_facts_and_vectorised():
    hr = country_at(45.8, 16.0)
    assert (hr.code, hr.name, hr.continent, hr.continent_name) == ("HR", "Croatia", "EU", "Europe")
    assert hr.tld == ".hr" and hr.phone == "385"
    assert country("hr") == hr and country(None) is None and country("ZZ") is None
    assert country_codes_at([45.8, 0.0], [16.0, -30.0]) == ["HR", None]
    assert COASTAL_KM == 50.0


LOOKUP_CASES = [
    (45.815, 15.982), (43.7384, 7.4246), (41.9029, 12.4534), (1.29, 103.85), (37.80, -122.44), (43.40, 16.10),
    (0.0, -30.0), (-40.0, -120.0), (-80.0, 20.0), (-75.0, 120.0), (-33.92, 18.42), (49.0, -100.0),
    (64.1, -21.9), (-54.8, -68.3), (71.0, 25.0), (90.0, 0.0), (-90.0, 180.0), (95.0, 0.0), (np.nan, 3.0),
]


def test_vectorised_lookup_gives_the_point_by_point_answers():
    lat, lon = np.array(LOOKUP_CASES).T
    assert country_codes_at(lat, lon) == [country_code_at(a, b) for a, b in LOOKUP_CASES]


def test_antarctica_is_not_south_africa_and_far_ocean_has_no_country():
    from geocli.geo.countries import continents_of

    codes = country_codes_at([-80.0, -75.0, -33.92, 0.0, -40.0], [20.0, 120.0, 18.42, -30.0, -120.0])
    assert codes == ["AQ", "AQ", "ZA", None, None]
    assert continents_of(codes) == ["AN", "AN", "AF", None, None]


def test_grid_cells_are_whole_only_where_no_border_crosses():
    """A toy world of two squares: cells they cover whole get their country, cells a border or coast
    crosses are mixed, and cells of sea farther than COASTAL_KM from any town are open ocean."""
    import shapely

    from geocli.geo.country_grid import MIXED, NO_COUNTRY, OPEN_OCEAN, build_grid

    squares = [("HR", shapely.box(15.0, 45.0, 16.0, 46.0)), ("SI", shapely.box(14.0, 45.0, 15.0, 46.0))]
    labels, codes = build_grid(0.25, squares)
    assert codes == ["HR", "SI"]
    cell = lambda lat, lon: labels[int((lat + 90) / 0.25), int((lon + 180) / 0.25)]  # noqa: E731
    assert cell(45.5, 15.6) == 1 and cell(45.5, 14.4) == 2
    assert cell(45.1, 15.1) == MIXED and cell(45.1, 14.9) == MIXED  # the border runs along their edge
    assert cell(0.1, -30.1) == OPEN_OCEAN and cell(45.5, 16.1) in (NO_COUNTRY, MIXED)
