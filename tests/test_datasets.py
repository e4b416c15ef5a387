import numpy as np
import pytest

from conftest import write_csv
from geocli.datasets import check_images, load_benchmark, load_dataset, read_manifest
from geocli.datasets.samplers import class_balanced_weights
from geocli.datasets.splits import (
    group_split, inverse_frequency_class_weights, random_split, spatial_kmeans_split,
    split_manifest,
)
from geocli.errors import DatasetNotFoundError, ManifestError, UsageError


def test_manifest_basic_columns_and_root(tmp_path):
    csv = write_csv(tmp_path / "m.csv", "image,lat,lon,country,scene,location_id\na.jpg,45.1,15.2,hr,urban,L1\n/abs/b.jpg,-1,2,,,\n")
    m = read_manifest(csv)
    assert m.images == [str(tmp_path / "a.jpg"), "/abs/b.jpg"]
    assert m.lat.tolist() == [45.1, -1.0] and m.country == ["HR", None]
    assert m.scene == ["urban", None] and m.group == ["L1", None] and m.rows == [2, 3]
    assert read_manifest(csv, root=tmp_path / "imgs").images[0] == str(tmp_path / "imgs" / "a.jpg")


@pytest.mark.parametrize(
    "text",
    [
        "IMG_ID,LAT,LON\nx.jpg,1,2\n",
        "\ufeffimage;latitude;longitude\r\nx.jpg;1;2\r\n",
        "IMG_FILE\tLatitude\tLongitude\textra\nx.jpg\t1\t2\tjunk\n",
    ],
)
def test_aliases_bom_crlf_semicolon_tab(tmp_path, text):
    m = read_manifest(write_csv(tmp_path / "m.csv", text))
    assert len(m) == 1 and (m.lat[0], m.lon[0]) == (1.0, 2.0)


@pytest.mark.parametrize(
    "text,message",
    [
        ("image,lat\nx.jpg,1\n", "missing column"),
        ("image,lat,lon\nx.jpg,95,100\n", "line 2: latitude 95.0"),
        ("image,lat,lon\nx.jpg,1,2\ny.jpg,1,200\n", "line 3: longitude 200.0"),
        ("image,lat,lon\nx.jpg,nan,2\n", "line 2: lat is 'nan'"),
        ("image,lat,lon\nx.jpg,abc,2\n", "line 2: lat is not a number"),
        ("image,lat,lon\nx.jpg,1,2\nx.jpg,3,4\n", "line 3: duplicate image"),
        ("image,lat,lon\n../x.jpg,1,2\n", "outside the root"),
        ("image,lat,lon\n", "no data rows"),
        ("IMG_ID,LON,LAT\nx.jpg,45,120\ny.jpg,10,-100\n", "swapped"),
    ],
)
def test_bad_manifests_name_the_problem(tmp_path, text, message):
    with pytest.raises(ManifestError, match=message):
        read_manifest(write_csv(tmp_path / "m.csv", text))


def test_missing_images_error_or_skip(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    m = read_manifest(write_csv(tmp_path / "m.csv", "image,lat,lon\na.jpg,1,2\nb.jpg,1,2\nc.jpg,1,2\n"))
    with pytest.raises(DatasetNotFoundError, match=r"2 of 3 images .* missing .*b\.jpg"):
        check_images(m)
    lines = []
    kept = check_images(m, skip_missing=True, log=lines.append)
    assert kept.images == [str(tmp_path / "a.jpg")] and "skipped 2 of 3" in lines[0]


def test_benchmark_lookup_and_errors(tmp_path):
    write_csv(tmp_path / "im2gps_places365.csv", "IMG_ID,AUTHOR,LAT,LON,S3_Label\nx.jpg,a,1,2,0\n")
    m = load_benchmark("im2gps", root=tmp_path)
    assert m.scene == ["indoor"] and m.images == [str(tmp_path / "x.jpg")]
    with pytest.raises(DatasetNotFoundError, match="pass --metadata im2gps3k_places365.csv"):
        load_benchmark("im2gps3k", root=tmp_path)
    with pytest.raises(UsageError, match="unknown benchmark"):
        load_benchmark("nope")
    assert len(load_dataset(str(tmp_path / "im2gps_places365.csv"))) == 1


@pytest.mark.realdata
@pytest.mark.parametrize("name,file,n", [("im2gps", "im2gps_places365.csv", 237),
                                         ("im2gps3k", "im2gps3k_places365.csv", 2997),
                                         ("yfcc26k", "yfcc25600_places365.csv", 25600)])
def test_real_benchmark_metadata(benchmark_meta, name, file, n):
    m = load_benchmark(name, root="/images", metadata=benchmark_meta / file)
    assert len(m) == n and set(m.scene) <= {"indoor", "natural", "urban"}
    assert np.abs(m.lat).max() <= 90 and m.images[0].startswith("/images/")


@pytest.mark.realdata
def test_swapped_header_copy_of_real_file(benchmark_meta, tmp_path):
    lines = (benchmark_meta / "im2gps3k_places365.csv").read_text().splitlines()
    swapped = lines[0].replace("LAT,LON", "LON,LAT")
    with pytest.raises(ManifestError, match="swapped"):
        read_manifest(write_csv(tmp_path / "s.csv", "\n".join([swapped, *lines[1:]])))


def test_random_split_partitions_indices():
    tr, va = random_split(100, 0.2, seed=1)
    assert len(va) == 20 and sorted(np.concatenate([tr, va]).tolist()) == list(range(100))


def test_group_split_keeps_groups_together():
    groups = [f"g{i // 4}" for i in range(40)]
    tr, va = group_split(groups, 0.25, seed=3)
    assert not {groups[i] for i in tr} & {groups[i] for i in va}
    assert len(va) > 0 and len(va) % 4 == 0


def test_spatial_kmeans_split_holds_out_whole_regions():
    rng = np.random.default_rng(0)
    lat = np.concatenate([rng.normal(c, 0.05, 30) for c in (0, 20, 40, 60)])
    lon = np.concatenate([rng.normal(c, 0.05, 30) for c in (0, 30, 60, 90)])
    tr, va = spatial_kmeans_split(lat, lon, 0.25, n_clusters=4, seed=0)
    assert len(va) == 30 and np.ptp(lat[va]) < 1


def test_split_manifest_methods(tmp_path):
    rows = "".join(f"{i}.jpg,{i % 7},{i % 5},L{i // 3}\n" for i in range(30))
    m = read_manifest(write_csv(tmp_path / "m.csv", "image,lat,lon,location_id\n" + rows))
    for method in ("random", "group", "spatial-kmeans"):
        tr, va = split_manifest(m, method, 0.2)
        assert len(tr) + len(va) == 30 and not set(tr.images) & set(va.images)
    with pytest.raises(UsageError, match="unknown split"):
        split_manifest(m, "alphabetical")


def test_class_weights():
    w = class_balanced_weights(["a", "a", "a", "b"])
    assert w[0] * 3 == pytest.approx(w[3]) and w.mean() == pytest.approx(1)
    cw = inverse_frequency_class_weights([0, 0, 0, 1], n_classes=3)
    assert cw[2] == 0 and cw[0] * 3 == pytest.approx(cw[1])
