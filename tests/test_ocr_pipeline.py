"""The PP-OCR pipeline's choices (detection size, providers, session options), OCR on the GPU, and
the OCR result cache."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from geocli.ocr import TextBox, build_ocr_engine
from geocli.ocr.cache import OCRCache, cached_reads, engine_key, pixels_key
from geocli.ocr.engines import engine_for_device
from geocli.ocr.onnx_runtime import CPU_PROVIDER, CUDA_PROVIDER, providers_for, session_options
from geocli.ocr.ppocr import DetectionSize


def sign(text: str, width: int = 480, height: int = 140) -> Image.Image:
    img = Image.new("RGB", (width, height), (250, 250, 245))
    ImageDraw.Draw(img).text((20, 30), text, fill=(10, 10, 10), font=ImageFont.load_default(size=64))
    return img


def test_detection_size_upscales_small_photos_and_caps_large_ones():
    size = DetectionSize(short_side=736, max_upscale=2.0, max_side=2000)
    assert size.shape(640, 480) == (736, 992)  # a phone photo's 480 px short side goes to 736
    assert size.scale(4000, 3000) == 0.5  # the long side is capped at 2000
    assert size.scale(1600, 1200) == 1.0  # large enough: never downscaled below its own pixels
    assert size.scale(200, 100) == 2.0  # a tiny image is upscaled at most 2x
    h, w = size.shape(333, 251)
    assert h % 32 == 0 and w % 32 == 0


def test_default_detection_size_is_the_plain_loops_for_phone_photos():
    # RapidOCR() detects a 640x360 photo at 1312x736; at a 2x cap it would be 1280x720 and read
    # several sign lines differently (README, OCR speed)
    assert DetectionSize().shape(640, 360) == (736, 1312)
    assert DetectionSize().shape(640, 480) == (736, 992)


def test_text_embedding_runs_on_one_thread_and_restores_torch_threads():
    import torch

    from geocli.ocr.embed import one_cpu_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_cpu_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with one_cpu_thread(active=False):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_cuda_provider_only_when_asked_for_and_installed():
    both = [CUDA_PROVIDER, CPU_PROVIDER]
    assert providers_for("cuda", both) == [(CUDA_PROVIDER, {"device_id": 0}), CPU_PROVIDER]
    assert providers_for("cuda:1", both)[0] == (CUDA_PROVIDER, {"device_id": 1})
    assert providers_for("cpu", both) == [CPU_PROVIDER]
    assert providers_for("cuda", [CPU_PROVIDER]) == [CPU_PROVIDER]


def test_ocr_moves_to_the_gpu_with_cuda():
    cpu_only = [CPU_PROVIDER]
    assert engine_for_device("rapidocr", "cpu", cpu_only) == ("rapidocr", None)
    assert engine_for_device("rapidocr", "cuda", [CUDA_PROVIDER, CPU_PROVIDER]) == ("rapidocr", None)
    name, notice = engine_for_device("rapidocr", "cuda", cpu_only, easyocr=True, cuda=True)
    assert name == "easyocr" and "onnxruntime-gpu" in notice
    name, notice = engine_for_device("rapidocr", "cuda", cpu_only, easyocr=False, cuda=True)
    assert name == "rapidocr" and "stays on the CPU" in notice
    assert engine_for_device("easyocr", "cuda", cpu_only) == ("easyocr", None)


def test_session_options_do_not_spin_and_use_the_given_threads():
    opts = session_options(threads=1)
    assert opts.intra_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_batch_read_matches_single_reads():
    engine = build_ocr_engine("rapidocr")
    images = [sign("STOP"), Image.new("RGB", (300, 200), "white"), sign("MARKET ST", width=560)]
    batch = engine.read_batch(images)
    assert [[b.text for b in boxes] for boxes in batch] == [[b.text for b in engine.read(i)] for i in images]
    assert batch[1] == [] and engine.provider == CPU_PROVIDER


def test_cache_reads_each_image_once(tmp_path):
    cache = OCRCache(engine_key("rapidocr", {"min_confidence": 0.5}), tmp_path)
    box = TextBox(((0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0)), "STOP", 0.9)
    calls = []

    def read(images):
        calls.append(len(images))
        return [[box] if img.getpixel((0, 0)) == (0, 0, 0) else [] for img in images]

    black, white = Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8), "white")
    assert cached_reads(cache, [black, white, black], read) == [[box], [], [box]]
    assert calls == [2]  # the duplicate photo is read once
    again = OCRCache(cache.path.stem, tmp_path)  # another process, same folder
    assert cached_reads(again, [white, black], read) == [[], [box]] and calls == [2]
    assert len(again) == 2


def test_cache_keys_follow_content_and_reading_options():
    a, b = Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8))
    assert pixels_key(a) == pixels_key(b)
    b.putpixel((3, 3), (1, 0, 0))
    assert pixels_key(a) != pixels_key(b)
    assert engine_key("rapidocr", {"threads": 1}) == engine_key("rapidocr", {"threads": 4})
    assert engine_key("rapidocr", {"min_box_height": 8}) != engine_key("rapidocr", {"min_box_height": 4})



def test_recognition_batches_group_similar_widths():
    import numpy as np

    from geocli.ocr.ppocr import PPOCR

    pipeline = PPOCR.__new__(PPOCR)
    pipeline.rec_batch = 2
    crops = [np.zeros((48, w, 3), np.uint8) for w in (100, 2000, 200, 300, 150)]
    # narrow crops share batches of at most two; the very wide one runs alone
    assert pipeline.batches(crops) == [[0, 4], [2, 3], [1]]


def test_text_regions_frame_blobs_and_give_up_when_text_is_everywhere():
    import numpy as np

    from geocli.ocr.regions import merge_overlapping, text_regions

    prob = np.zeros((48, 64), np.float32)
    assert text_regions(prob, (480, 640)) == []
    prob[10:14, 5:20] = 0.9  # one blob: 4 x 15 cells = 40 x 150 photo px
    (x0, y0, x1, y1), = text_regions(prob, (480, 640))
    assert x0 <= 50 - 16 and y0 <= 100 - 16 and x1 >= 200 + 16 and y1 >= 140 + 16
    prob[:, :] = 0.9
    assert text_regions(prob, (480, 640)) is None
    assert merge_overlapping([(0, 0, 10, 10), (5, 5, 20, 20), (30, 30, 40, 40)]) == [(0, 0, 20, 20), (30, 30, 40, 40)]


def test_coarse_pass_keeps_the_sign():
    engine = build_ocr_engine("rapidocr", coarse_scale=1.0)
    photo = Image.new("RGB", (640, 480), (90, 120, 90))
    photo.paste(sign("STOP"), (80, 200))
    assert "STOP" in [b.text for b in engine.read(photo)]
    assert engine.read(Image.new("RGB", (640, 480), (90, 120, 90))) == []


def test_ocr_throughput_reports_where_it_ran():
    from geocli.ocr.throughput import ocr_throughput

    row = ocr_throughput([sign("STOP"), sign("MARKET ST", width=560)], device="cpu", batch_size=1)
    assert row["engine"] == "rapidocr" and row["provider"] == CPU_PROVIDER
    assert row["lines"] >= 2 and row["photos_per_s"] > 0 and row["notice"] is None


def test_cuda_device_builds_rapidocr_sessions_on_the_cuda_provider(monkeypatch):
    import onnxruntime

    asked = []

    class FakeSession:  # what onnxruntime-gpu would give; records the providers it was asked for
        def __init__(self, path, sess_options=None, providers=None):
            asked.append(providers)

        def get_inputs(self):
            return [type("Input", (), {"name": "x"})()]

        def get_providers(self):
            return [p[0] if isinstance(p, tuple) else p for p in asked[-1]]

        def get_modelmeta(self):
            return type("Meta", (), {"custom_metadata_map": {"character": "a\nb"}})()

    monkeypatch.setattr("geocli.ocr.onnx_runtime.available_providers", lambda: [CUDA_PROVIDER, CPU_PROVIDER])
    monkeypatch.setattr(onnxruntime, "InferenceSession", FakeSession)
    assert engine_for_device("rapidocr", "cuda:0") == ("rapidocr", None)  # no hand-over to EasyOCR
    engine = build_ocr_engine("rapidocr", device="cuda:0")
    assert engine.provider == CUDA_PROVIDER
    assert asked and all(p[0] == (CUDA_PROVIDER, {"device_id": 0}) for p in asked)
