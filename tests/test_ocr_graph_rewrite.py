"""The rewritten PP-OCR graphs compute what the originals compute, with far fewer ops, and the
rewritten copy is cached and never trusted blindly."""
from __future__ import annotations

import sys

import numpy as np
import onnxruntime
import pytest

from geocli.ocr.graph_rewrite import rewrite, rewritten_model
from geocli.ocr.onnx_runtime import OnnxModel
from geocli.ocr.ppocr import model_dir

DET, REC = "ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx"


def run(model, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("name, shape", [(DET, (1, 3, 96, 128)), (REC, (2, 3, 48, 160))])
def test_rewritten_models_compute_the_same(name, shape):
    import onnx

    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    original = model_dir() / name
    fast = rewrite(onnx.load(str(original)))
    assert np.abs(run(fast.SerializeToString(), x) - run(str(original), x)).max() < 1e-4
    assert "Clip" not in [n.op_type for n in fast.graph.node]  # every hard-swish became x * HardSigmoid(x)
    assert elementwise(fast) < 0.4 * elementwise(onnx.load(str(original)))


def elementwise(model) -> int:
    return sum(n.op_type in ("Add", "Mul", "Div", "Clip") for n in model.graph.node)


def test_rewritten_model_is_cached_by_content(tmp_path):
    first = rewritten_model(model_dir() / DET, tmp_path)
    assert first.startswith(str(tmp_path)) and not list(tmp_path.glob("*.part"))
    sys.modules["onnx"] = None  # a second call finds the file and needs no onnx at all
    try:
        assert rewritten_model(model_dir() / DET, tmp_path) == first
    finally:
        del sys.modules["onnx"]


def test_without_onnx_or_a_writable_cache_the_original_model_runs(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert rewritten_model(model_dir() / DET, tmp_path) == str(model_dir() / DET)
    monkeypatch.delitem(sys.modules, "onnx")
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert rewritten_model(model_dir() / DET, blocked / "sub") == str(model_dir() / DET)


def test_a_damaged_cached_model_falls_back_to_the_original(tmp_path, monkeypatch):
    damaged = rewritten_model(model_dir() / DET, tmp_path)
    with open(damaged, "wb") as f:
        f.write(b"not a model")
    monkeypatch.setattr("geocli.ocr.graph_rewrite.rewritten_model", lambda path: damaged)
    model = OnnxModel(model_dir() / DET)
    assert model(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 1, 64, 64)
