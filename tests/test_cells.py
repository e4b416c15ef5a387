import json

import numpy as np
import pytest

from geocli.geo.cells import GeocellHierarchy, GeocellPartition, PartitionSpec
from geocli.geo.distance import haversine_km


def clustered_points(seed=0):
    """Three dense clusters (Zagreb, Paris, Tokyo) plus a sparse scatter."""
    rng = np.random.default_rng(seed)
    centres = [(45.8, 16.0, 400), (48.85, 2.35, 150), (35.7, 139.7, 60)]
    lat = np.concatenate([rng.normal(a, 0.2, n) for a, _, n in centres] + [rng.uniform(-60, 60, 10)])
    lon = np.concatenate([rng.normal(b, 0.2, n) for _, b, n in centres] + [rng.uniform(-180, 180, 10)])
    return lat, lon


def test_split_respects_max_and_min():
    lat, lon = clustered_points()
    p = GeocellPartition.build(lat, lon, PartitionSpec("fine", min_samples=5, max_samples=50))
    assert (p.counts <= 50).all() and (p.counts >= 5).all()
    assert len(p) > 10  # the 400-point cluster had to be split


def test_cell_mean_is_members_mean_and_assignment_consistent():
    lat, lon = clustered_points()
    p = GeocellPartition.build(lat, lon, PartitionSpec("mid", min_samples=5, max_samples=100))
    idx = p.assign(lat, lon)
    for c in range(len(p)):
        members = idx == c
        assert members.sum() >= p.counts[c]  # members plus orphans from dropped cells
    dense = haversine_km(lat[:400], lon[:400], p.means[idx[:400], 0], p.means[idx[:400], 1])
    assert np.median(dense) < 60


def test_orphans_go_to_nearest_cell():
    lat, lon = clustered_points()
    p = GeocellPartition.build(lat, lon, PartitionSpec("coarse", min_samples=30, max_samples=10_000))
    far = p.assign([-45.0], [170.0])  # New Zealand: no cell nearby
    d = haversine_km(-45.0, 170.0, p.means[:, 0], p.means[:, 1])
    assert far[0] == int(np.argmin(d))


def test_multiresolution_hierarchy_and_combination():
    lat, lon = clustered_points()
    specs = [PartitionSpec("coarse", 5, 300), PartitionSpec("middle", 5, 100), PartitionSpec("fine", 5, 30)]
    h = GeocellHierarchy.build(lat, lon, specs)
    sizes = [len(p) for p in h.partitions]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    probs = [np.full((2, n), 1.0 / n) for n in sizes]
    probs[0][:, 0] = 1.0  # all mass on coarse cell 0
    probs[0][:, 1:] = 0.0
    combined = h.combine(probs)
    assert combined.shape == (2, sizes[-1])
    np.testing.assert_allclose(combined.sum(axis=1), 1.0)
    assert (combined[:, h.parents[0] != 0] == 0).all()


def test_serialisation_round_trip():
    lat, lon = clustered_points()
    h = GeocellHierarchy.build(lat, lon, [PartitionSpec("a", 5, 200), PartitionSpec("b", 5, 40)])
    again = GeocellHierarchy.from_dict(json.loads(json.dumps(h.to_dict())))
    for k, v in h.assign(lat, lon).items():
        np.testing.assert_array_equal(again.assign(lat, lon)[k], v)
    np.testing.assert_allclose(again.finest.means, h.finest.means)


def test_bad_specs_and_coordinates():
    with pytest.raises(ValueError):
        PartitionSpec("x", 10, 5)
    with pytest.raises(ValueError, match="valid coordinates"):
        GeocellPartition.build([91.0], [0.0], PartitionSpec("x", 1, 5))
    with pytest.raises(ValueError, match="lower min_samples"):
        GeocellPartition.build([1.0, 2.0], [0.0, 0.0], PartitionSpec("x", 50, 100))


@pytest.mark.realdata
def test_real_yfcc26k_partition(benchmark_meta):
    from geocli.datasets import read_manifest

    m = read_manifest(benchmark_meta / "yfcc25600_places365.csv")
    p = GeocellPartition.build(m.lat, m.lon, PartitionSpec("fine", 50, 1000))
    assert 50 < len(p) < 200 and p.counts.max() <= 1000
