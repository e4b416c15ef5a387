"""A plain manifest read by pyarrow gives exactly what Python's csv module gives, and the
column-wide rules (numbers, paths, blank rows) follow Python's parsing."""
import numpy as np
import pytest

from geocli.datasets import manifest as manifest_module
from geocli.datasets.manifest import read_manifest
from geocli.datasets.manifest_columns import csv_columns
from geocli.errors import ManifestError

PLAIN = {
    "plain": b"image,lat,lon\na.jpg,45.8,16.0\nsub/b.jpg,-33.9,151.2\n",
    "extra columns and labels": b"image,lat,lon,country,scene,location_id\na.jpg,1,2,hr,0,L1\nb.jpg,3,4, ,urban,\n",
    "CRLF and a BOM": b"\xef\xbb\xbfimage,lat,lon\r\na.jpg,1,2\r\nb.jpg,3,4\r\n",
    "blank cells row": b"image,lat,lon\na.jpg,1,2\n,,\n \t, ,\nb.jpg,3,4\n",
    "blank line": b"image,lat,lon\na.jpg,1,2\n\nb.jpg,3,4\n",
    "decimal commas": b"image;lat;lon\na.jpg;1,5;2,25\n",
    "no final newline": b"image,lat,lon\na.jpg,1,2",
    "paths needing normalisation": b"image,lat,lon\n./a.jpg,1,2\nx//b.jpg,1,2\n c.jpg ,1,2\nd/./e.jpg,1,2\n/abs/f.jpg,1,2\n",
    "numbers Python reads and pyarrow does not": b"image,lat,lon\na.jpg, 1.5,1_0\nb.jpg,2,3\n",
}
NOT_PLAIN = {
    "quotes": b'image,lat,lon\n"a,1.jpg",1,2\n',
    "ragged row": b"image,lat,lon,notes\na.jpg,1,2\n",
    "lone CR": b"image,lat,lon\ra.jpg,1,2\r",
    "latin-1": "image,lat,lon\ncafé.jpg,1,2\n".encode("latin-1"),
}


def _fields(m):
    return m.images, m.lat.tolist(), m.lon.tolist(), m.country, m.scene, m.group, m.rows


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_pyarrow_reads_what_csv_reads(tmp_path, monkeypatch, name):
    path = tmp_path / "m.csv"
    path.write_bytes(PLAIN[name])
    delimiter = b";" if b";" in PLAIN[name] else b","
    width = PLAIN[name].split(b"\n")[0].count(delimiter) + 1
    assert csv_columns(PLAIN[name], delimiter.decode(), width) is not None
    fast = read_manifest(path)
    monkeypatch.setattr(manifest_module, "csv_columns", lambda *a: None)
    assert _fields(fast) == _fields(read_manifest(path))


@pytest.mark.parametrize("name", sorted(NOT_PLAIN))
def test_files_that_are_not_plain_go_to_csv(name):
    raw = NOT_PLAIN[name]
    assert csv_columns(raw, ",", raw.replace(b"\r", b"\n").split(b"\n")[0].count(b",") + 1) is None


def test_values_are_resolved_and_labelled(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(PLAIN["extra columns and labels"])
    m = read_manifest(path)
    assert m.images == [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")]
    assert m.country == ["HR", None] and m.scene == ["indoor", "urban"] and m.group == ["L1", None]
    path.write_bytes(PLAIN["paths needing normalisation"])
    assert read_manifest(path).images == [str(tmp_path / "a.jpg"), str(tmp_path / "x/b.jpg"),
                                          str(tmp_path / "c.jpg"), str(tmp_path / "d/e.jpg"), "/abs/f.jpg"]
    assert read_manifest(path).rows == [2, 3, 4, 5, 6]


@pytest.mark.parametrize("body,message", [
    (b"a.jpg,1,2\nb.jpg,nan,2\nc.jpg,x,2\n", "line 3: lat is 'nan'"),
    (b"a.jpg,1,2\nb.jpg,1,inf\n", "line 3: lon is 'inf'"),
    (b"a.jpg,1,2\nb.jpg,north,2\n", "line 3: lat is not a number: 'north'"),
    (b"a.jpg,1,2\nb.jpg,91,2\n", r"line 3: latitude 91.0 outside \[-90, 90\]"),
    (b"a.jpg,1,2\n../b.jpg,1,2\n", "line 3: image path '../b.jpg' points outside the root"),
    (b"a.jpg,1,2\n  ,1,2\n", "line 3: empty image path"),
    (b"a.jpg,1,2\nb.jpg,1,2\n./a.jpg,3,4\n", "line 4: duplicate image .* \\(first on line 2\\)"),
])
def test_bad_rows_are_named_by_line(tmp_path, body, message):
    path = tmp_path / "m.csv"
    path.write_bytes(b"image,lat,lon\n" + body)
    with pytest.raises(ManifestError, match=message):
        read_manifest(path)


def test_many_rows_keep_their_order_and_lines(tmp_path):
    n = 5000
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-90, 90, n), rng.uniform(-180, 180, n)
    path = tmp_path / "m.csv"
    path.write_text("image,lat,lon\n" + "".join(f"d{i % 7}/p{i}.jpg,{a!r},{b!r}\n" for i, (a, b) in enumerate(zip(lat.tolist(), lon.tolist()))))
    m = read_manifest(path)
    assert m.lat.tolist() == lat.tolist() and m.lon.tolist() == lon.tolist()
    assert m.images[4999] == str(tmp_path / "d1/p4999.jpg") and m.rows[-1] == n + 1
