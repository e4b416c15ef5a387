"""geocli serve's API: the records predict gives, batching across requests, limits, bad uploads, static files."""
from __future__ import annotations

import threading
import time

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from geocli import load_model
from geocli.cli.serve import is_loopback
from geocli.serve.app import Limits, ServeSettings, create_app, upload_name
from geocli.serve.batcher import BatchingPredictor
from serve_helpers import gps_jpeg


@pytest.fixture(scope="module")
def predictor():
    return load_model("evidence", no_ocr=True)


@pytest.fixture()
def client(predictor):
    settings = ServeSettings("evidence", limits=Limits(max_files=3, max_file_bytes=200_000))
    with TestClient(create_app(predictor, settings)) as c:
        yield c


def test_api_returns_the_records_predict_gives(client, predictor, tmp_path):
    path = gps_jpeg(tmp_path / "zagreb.jpg")
    with open(path, "rb") as f:
        response = client.post("/api/predict", files=[("files", ("zagreb.jpg", f, "image/jpeg"))])
    assert response.status_code == 200
    (served,) = response.json()
    (direct,) = list(predictor.predict([path]))
    assert served["image"] == "zagreb.jpg"
    assert {**served, "image": path} == direct
    assert served["predictions"][0]["source"] == "exif" and served["exif"]["gps"] == {"lat": 45.8, "lon": 15.98}


def test_bad_upload_is_an_error_record_with_4xx_and_the_server_goes_on(client, tmp_path):
    good = gps_jpeg(tmp_path / "a.jpg")
    files = [("files", ("notes.txt", b"not an image", "text/plain")), ("files", ("a.jpg", open(good, "rb"), "image/jpeg"))]
    response = client.post("/api/predict", files=files)
    assert response.status_code == 422
    bad, ok = response.json()
    assert bad == {"image": "notes.txt", "ok": False, "error": "not a recognised image format: notes.txt",
                   "exif": None, "predictions": [], "scene": None, "text": []}
    assert ok["ok"] and ok["predictions"]
    again = client.post("/api/predict", files=[("files", ("a.jpg", open(good, "rb"), "image/jpeg"))])
    assert again.status_code == 200 and again.json()[0]["ok"]


def test_limits_on_size_and_count(client, tmp_path):
    big = b"\xff\xd8" + b"0" * 300_000
    response = client.post("/api/predict", files=[("files", ("big.jpg", big, "image/jpeg"))])
    assert response.status_code == 413
    assert response.json()[0]["error"] == "file too large (over 0.191 MB)"
    many = [("files", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(4)]
    response = client.post("/api/predict", files=many)
    assert response.status_code == 413 and "limit 3 photos" in response.json()["error"]
    assert client.post("/api/predict", data={"other": "x"}).status_code == 400
    assert client.post("/api/predict?top=0", files=many[:1]).status_code == 400


def test_models_and_borders(client):
    models = client.get("/api/models").json()
    assert models["model"] == "evidence" and models["limits"]["max_files"] == 3 and models["tiles"] is None
    assert [m["name"] for m in models["models"] if m["loaded"]] == ["evidence"]
    borders = client.get("/api/borders").json()
    assert len(borders["countries"]) > 150 and "Natural Earth" in borders["source"]


def test_page_and_static_files_come_from_geocli_by_name_only(client):
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text
    for name in ("app.js", "app.css", "geomap.js", "geomap.css"):
        assert client.get(f"/static/{name}").status_code == 200
    for probe in ("/static/..%2Fapp.py", "/static/index.html", "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
                  "/static/../../etc/passwd", "/etc/passwd", "/static/borders.json"):
        assert client.get(probe).status_code == 404, probe


def test_upload_names_are_base_names_without_control_characters():
    assert upload_name("../../etc/passwd", 0) == "passwd"
    assert upload_name("C:\\Users\\me\\IMG 1.jpg", 0) == "IMG 1.jpg"
    assert upload_name("a\x1b[31mred\n.jpg", 0) == "a[31mred.jpg"
    assert upload_name("", 4) == "upload-5"


class SlowPredictor:
    """Records what it was asked to predict together; takes a while per call, as models do."""

    def predict(self, items, top_k=5, batch_size=8):
        time.sleep(0.2)
        return [{"image": name, "ok": True, "top_k": top_k} for name, _ in items]


def test_concurrent_requests_share_a_batch():
    batcher = BatchingPredictor(SlowPredictor(), batch_size=8, max_wait_s=0.1)
    results = {}

    def request(i):
        futures = batcher.submit([(f"r{i}-a", b""), (f"r{i}-b", b"")], top_k=3)
        results[i] = [f.result(timeout=10)["image"] for f in futures]

    threads = [threading.Thread(target=request, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    assert results == {i: [f"r{i}-a", f"r{i}-b"] for i in range(4)}  # each request gets its own, in order
    assert max(batcher.batch_sizes) > 2 and sum(batcher.batch_sizes) == 8


def test_loopback_by_default_and_a_warning_for_all_interfaces(monkeypatch):
    import uvicorn

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.168.1.4")
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    from geocli.cli.serve import serve

    result = CliRunner().invoke(serve, ["--model", "evidence", "--host", "0.0.0.0", "--port", "0", "--no-ocr"])
    assert result.exit_code == 0, result.output
    assert calls == [{"host": "0.0.0.0", "port": 0, "log_level": "warning"}]
    assert "warning: listening on 0.0.0.0" in result.output
    quiet = CliRunner().invoke(serve, ["--model", "evidence", "--port", "0", "--no-ocr"])
    assert "warning" not in quiet.output and calls[-1]["host"] == "127.0.0.1"


def test_tiles_only_from_the_named_server(predictor):
    settings = ServeSettings("evidence", tiles="https://{s}.tile.example.org/{z}/{x}/{y}.png")
    with TestClient(create_app(predictor, settings)) as c:
        assert c.get("/api/models").json()["tiles"] == settings.tiles
        csp = c.get("/").headers["content-security-policy"]
    assert "img-src 'self' blob: data: https://*.tile.example.org;" in csp and "script-src 'self';" in csp


def test_a_taken_port_is_one_line_before_the_model_loads(monkeypatch):
    import socket

    import geocli
    from geocli.cli.main import main

    monkeypatch.setattr(geocli, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_:
            main(["serve", "--model", "evidence", "--port", str(port)])
    assert exit_.value.code == 2
