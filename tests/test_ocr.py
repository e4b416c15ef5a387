"""OCR engines on generated signs, the text embedder, and the OCR branch's no-text handling."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from geocli.branches import OCRBranch
from geocli.errors import MissingDependencyError
from geocli.ocr import OCR_ENGINES, TextBox, boxes_to_text, build_ocr_engine, reading_order
from geocli.ocr.embed import TextEmbedder, packaged_minilm_dir


def sign(text: str, width: int = 480, height: int = 140, size: int = 64) -> Image.Image:
    img = Image.new("RGB", (width, height), (250, 250, 245))
    ImageDraw.Draw(img).text((20, 30), text, fill=(10, 10, 10), font=ImageFont.load_default(size=size))
    return img


@pytest.fixture(scope="module")
def rapid():
    return build_ocr_engine("rapidocr")


@pytest.fixture(scope="module")
def branch():
    return OCRBranch()


def test_registry_lists_engines():
    assert {"rapidocr", "easyocr", "paddleocr"} <= set(OCR_ENGINES.names())


def test_rapidocr_reads_generated_signs(rapid):
    assert "STOP" in boxes_to_text(rapid.read(sign("STOP")))
    text = boxes_to_text(rapid.read(sign("MARKET ST", width=560)))
    assert "MARKET" in text.replace(" ", "")
    boxes = rapid.read(sign("STOP"))
    assert all(isinstance(b, TextBox) and len(b.box) == 4 and 0 <= b.confidence <= 1 for b in boxes)
    assert rapid.read(Image.new("RGB", (300, 200), "white")) == []


def test_filters_drop_small_and_unsure_boxes():
    strict = build_ocr_engine("rapidocr", min_confidence=0.999999)
    assert strict.read(sign("STOP")) == []
    no_small = build_ocr_engine("rapidocr", min_box_height=100)
    assert no_small.read(sign("STOP", size=40)) == []


def test_reading_order_lines_then_left_to_right():
    def box(x, y, text):
        return TextBox(((x, y), (x + 40, y), (x + 40, y + 20), (x, y + 20)), text, 0.9)

    ordered = reading_order([box(100, 52, "ST"), box(10, 50, "MARKET"), box(10, 0, "WELLS")])
    assert [b.text for b in ordered] == ["WELLS", "MARKET", "ST"]


def test_embedder_uses_packaged_minilm_offline(branch):
    assert (packaged_minilm_dir() / "model.safetensors").is_file()
    embedder = branch.embedder
    assert isinstance(embedder, TextEmbedder)
    emb = embedder.embed(["Market Street", "MARKET ST", "chocolate cake recipe"])
    assert emb.shape == (3, 384)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]


def test_branch_has_text_and_no_text_vector(branch):
    out = branch.encode_images([sign("STOP"), Image.new("RGB", (200, 100), (128, 128, 128))])
    assert out.has_text.tolist() == [True, False]
    assert "STOP" in out.texts[0] and out.texts[1] == ""
    torch.testing.assert_close(out.emb[1], branch.no_text.detach())
    assert out.emb[1].norm() > 0.5  # a defined vector, not zeros
    assert out.emb.shape == (2, branch.out_dim)


def test_branch_uses_its_ocr_cache(branch, tmp_path, monkeypatch):
    monkeypatch.setattr(branch, "ocr_cache", None)  # back to no cache after the test
    branch.use_ocr_cache(str(tmp_path))
    first = branch.encode_images([sign("STOP")])
    assert "STOP" in first.texts[0] and first.boxes[0][0].text == first.texts[0]
    monkeypatch.setattr(branch.engine, "read_batch", lambda images: pytest.fail("read again"))
    again = branch.encode_images([sign("STOP")])
    assert again.texts == first.texts and again.has_text.tolist() == [True]


def test_forward_accepts_cached_embeddings_and_texts(branch):
    emb, has_text = branch.embed_texts(["MARKET ST", ""])
    from_cache = branch({"text_emb": emb, "has_text": has_text})
    torch.testing.assert_close(from_cache, branch(["MARKET ST", ""]))
    loss = from_cache[1].sum()
    loss.backward()  # the no-text vector learns; the frozen text model does not
    assert float(branch.no_text.grad.abs().sum()) > 0
    assert all(p.grad is None for p in branch.text_model.parameters())
    branch.no_text.grad = None


def test_config_round_trip(branch):
    config = json.loads(json.dumps(branch.config))
    assert config["engine"] == "rapidocr" and config["min_confidence"] == 0.5
    assert set(config) <= set(__import__("inspect").signature(OCRBranch.__init__).parameters)


def test_easyocr_offline_models_read_signs():
    pytest.importorskip("easyocr")
    pytest.importorskip("easyocr_en_models")
    engine = build_ocr_engine("easyocr", gpu=False)
    assert "STOP" in boxes_to_text(engine.read(sign("STOP"))).upper()


def test_paddleocr_absent_gives_install_hint():
    try:
        import paddleocr  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match=r"geocli\[paddle\]"):
            build_ocr_engine("paddleocr")
    else:
        pytest.skip("paddleocr is installed")


@pytest.mark.realdata
def test_reads_real_signs(shared_data, rapid):
    from geocli.images import open_image

    folder = shared_data / "sf-landmarks" / "images"
    texts = {name: boxes_to_text(rapid.read(open_image(folder / name))) for name in ("0000.jpg", "0002.jpg")}
    assert "WELLS" in texts["0000.jpg"].upper()
    assert "VANPOOL" in texts["0002.jpg"].upper()


@pytest.mark.realdata
def test_reads_small_real_sign_lines(shared_data, rapid):
    from geocli.images import open_image

    # MASON is a 6 px tall line the plain RapidOCR loop reads with confidence 0.97
    boxes = rapid.read(open_image(shared_data / "sf-landmarks" / "images" / "0779.jpg"))
    assert "MASON" in [b.text for b in boxes]
