"""geocli predict / eval with a checkpoint folder from geocli train: records, five-crop TTA, the
embedding cache, EXIF, OCR evidence and the CLI's exit codes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import train_helpers as T
from geocli import load_model
from geocli.branches.base import Preprocess
from geocli.cli.main import cli
from geocli.store.checkpoint import load_checkpoint
from geocli.training.trainer import train
from geocli.images import open_image


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained checkpoint (country + geocell heads) and its generated data folder."""
    tmp = tmp_path_factory.mktemp("ckpt")
    cfg = T.tiny_config(tmp, epochs=3)
    train(cfg, progress=False)
    return tmp


def _photo(run, name="r0_l0_v0.png"):
    return str(run / "data" / "img" / name)


def _jsonl(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_predict_cli_writes_ranked_records_and_error_rows(run, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    args = ["predict", _photo(run), _photo(run, "r1_l0_v0.png"), str(bad), "--model", str(run / "run"),
            "--format", "jsonl", "--top", "3", "--cache-dir", str(tmp_path / "c")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    good, other, broken = _jsonl(result)
    labels = json.loads((run / "run" / "config.json").read_text())["model"]["labels"]
    for rec in (good, other):
        assert rec["ok"] and [p["rank"] for p in rec["predictions"]] == [1, 2, 3]
        probs = [p["probability"] for p in rec["predictions"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert all(p["source"] == "geocell" and p["cell"] for p in rec["predictions"])
        assert rec["country_head"][0]["country"] in labels["countries"]
        assert set(rec) >= {"image", "ok", "error", "exif", "predictions", "scene", "text"}
    assert not broken["ok"] and "not a recognised image" in broken["error"]


def test_library_predictions_match_the_model_on_centre_crops(run):
    records = list(load_model(str(run / "run"), cache=False).predict([_photo(run)], top_k=2))
    model = load_checkpoint(run / "run")
    pre = Preprocess.from_dict(model.config.branch("rgb").preprocess)
    direct = model.predict({"rgb": pre.transform(False)(open_image(_photo(run)))[None]}, top_k=2)[0]
    assert [p["cell"] for p in records[0]["predictions"]] == [p["cell"] for p in direct["predictions"]]
    assert records[0]["predictions"][0]["probability"] == pytest.approx(direct["predictions"][0]["probability"], rel=1e-5)


def test_five_crop_averages_the_softmax_of_the_five_crops(run, tmp_path):
    big = tmp_path / "big.png"
    Image.open(_photo(run)).resize((96, 64)).save(big)
    geo = load_model(str(run / "run"), tta="five-crop", cache=False).geolocator
    rec = geo.locate([open_image(big)], [str(big)], top_k=3)[0]
    model = load_checkpoint(run / "run")
    crops = Preprocess.from_dict(model.config.branch("rgb").preprocess).views("five-crop")(open_image(big))
    assert len(crops) == 5 and not torch.equal(crops[0], crops[4])
    with torch.no_grad():
        logits = model({"rgb": torch.stack(crops)})["heads"]["country"]["logits"]
    mean = logits.softmax(-1).mean(0)
    codes = model.heads["country"].classes
    assert rec["country_head"][0]["country"] == codes[int(mean.argmax())]
    assert rec["country_head"][0]["probability"] == pytest.approx(float(mean.max()), rel=1e-5)


def test_cache_skips_the_frozen_branch_and_changes_nothing(run, tmp_path, monkeypatch):
    from geocli.branches.rgb import RGBBranch

    paths = [_photo(run), _photo(run, "r2_l1_v1.png")]
    plain = list(load_model(str(run / "run"), cache=False).predict(paths))
    options = {"cache_dir": str(tmp_path / "cache")}
    first = list(load_model(str(run / "run"), **options).predict(paths))
    calls = []
    for method in ("forward", "tokens_in"):  # whichever way the ViT would run
        original = getattr(RGBBranch, method)
        monkeypatch.setattr(RGBBranch, method, lambda self, *a, _o=original, **k: calls.append(1) or _o(self, *a, **k))
    geo = load_model(str(run / "run"), **options)
    assert geo.geolocator.inputs.cached == {"rgb"}
    second = list(geo.predict(paths))
    assert calls == []  # every vector came from the cache
    for a, b, c in zip(plain, first, second):
        assert [p["cell"] for p in a["predictions"]] == [p["cell"] for p in b["predictions"]] == [p["cell"] for p in c["predictions"]]
        assert a["predictions"][0]["probability"] == pytest.approx(c["predictions"][0]["probability"], rel=1e-5)


def test_eval_reuses_the_vectors_training_cached(run, monkeypatch):
    """Same branch, same preprocessing as saved in the checkpoint -> same cache entries."""
    from geocli.branches.rgb import RGBBranch

    calls = []
    for method in ("forward", "tokens_in"):
        monkeypatch.setattr(RGBBranch, method, lambda self, *a, **k: calls.append(1))
    geo = load_model(str(run / "run"), cache_dir=str(run / "cache"))
    records = list(geo.predict([_photo(run), _photo(run, "r1_l2_v1.png")]))
    assert calls == [] and all(r["ok"] and r["predictions"] for r in records)


def test_eval_with_a_checkpoint_scores_every_image(run, tmp_path):
    args = ["eval", str(run / "data" / "manifest.csv"), "--model", str(run / "run"), "--format", "json",
            "--cache-dir", str(tmp_path / "c")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == report["n_dataset"] == 54 and report["missing"] == 0
    from geocli.datasets import load_dataset
    from geocli.datasets.manifest import manifest_countries

    known = json.loads((run / "run" / "config.json").read_text())["model"]["labels"]["countries"]
    truth = manifest_countries(load_dataset(str(run / "data" / "manifest.csv")))
    assert set(report["country_topk"]) == {"1", "5", "10"}
    # all countries fit in the top 10: a miss is a photo whose country the training set never saw
    assert report["country_topk"]["10"] == pytest.approx(np.mean([t in known for t in truth]))
    assert report["accuracy"]["2500"] == 1.0  # every guess lands in one of the three regions' cells


def test_trust_exif_puts_the_photo_gps_first(run, tmp_path):
    img = Image.open(_photo(run)).convert("RGB")
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "S", 2: (33.0, 52.0, 0.0), 3: "E", 4: (151.0, 12.0, 0.0)})
    path = tmp_path / "sydney.jpg"
    img.save(path, exif=exif)
    geo = load_model(str(run / "run"), trust_exif=True, cache=False)
    rec = next(iter(geo.predict([str(path)], top_k=3)))
    first = rec["predictions"][0]
    assert first["source"] == "exif" and first["country"] == "AU" and first["probability"] == pytest.approx(0.99)
    assert [p["rank"] for p in rec["predictions"]] == [1, 2, 3] and rec["exif"]["gps"]["lat"] == pytest.approx(-33.8667)
    assert any(line.startswith("EXIF GPS") for line in rec["evidence"])
    # the model (trained on Europe) is far from Sydney, and the record says by how much
    assert any("km from the EXIF GPS position" in line for line in rec["evidence"])


def _main(args, capsys) -> tuple[int, str]:
    """The console entry point as a user meets it: exit code and stderr."""
    from geocli.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code, capsys.readouterr().err


def test_checkpoint_only_options_are_refused_for_builtin_models(run, capsys):
    code, err = _main(["predict", _photo(run), "--tta", "five-crop"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "checkpoint models only" in err and "Traceback" not in err


def test_ocr_model_reads_text_and_no_ocr_gives_the_no_text_input(tmp_path):
    """A model with the real OCR branch (rapidocr + MiniLM): text and clues in the record."""
    T.make_manifest(tmp_path / "data", locations=2, views=2)  # OCR is the slow branch: 12 photos
    cfg = T.tiny_config(tmp_path, epochs=1, branches=["rgb", "ocr"])
    train(cfg, progress=False)
    sign = tmp_path / "sign.png"
    _draw_sign(sign, "WWW.ZAGREB.HR")
    rec = next(iter(load_model(cfg.out, cache=False).predict([str(sign)])))
    read = " ".join(t["text"] for t in rec["text"]).upper().replace(" ", "")
    assert "ZAGREB" in read
    assert any(".hr" in line.lower() for line in rec["evidence"])
    assert "OCR (rapidocr) read" in " ".join(rec["evidence"])
    other = load_model(cfg.out, cache=False, ocr_engine="easyocr").geolocator.model.branches["ocr"]
    assert other.engine_name == "easyocr" and type(other.engine).__name__.lower().startswith("easyocr")
    off = next(iter(load_model(cfg.out, cache=False, no_ocr=True).predict([str(sign)])))
    assert off["text"] == [] and off["ok"]
    model = load_checkpoint(cfg.out)
    assert not torch.equal(model.branches["ocr"].no_text.detach(), torch.zeros_like(model.branches["ocr"].no_text))


def _draw_sign(path, text: str) -> None:
    from PIL import ImageDraw, ImageFont

    img = Image.new("RGB", (480, 120), "white")
    try:
        font = ImageFont.load_default(size=40)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    ImageDraw.Draw(img).text((20, 30), text, fill="black", font=font)
    img.save(path)


def test_embedding_only_checkpoints_say_they_cannot_predict_from_photos(tmp_path, capsys):
    from geocli.config import BranchConfig, HeadConfig, LabelSpaces, ModelConfig
    from geocli.store.checkpoint import save_checkpoint
    from geocli.model import GeoModel

    config = ModelConfig(branches=[BranchConfig("clip", input="embedding", embed_dim=8)],
                         heads=[HeadConfig("country")], labels=LabelSpaces(countries=["HR", "FR"]))
    save_checkpoint(GeoModel(config), tmp_path / "emb")
    Image.new("RGB", (16, 16), "gray").save(tmp_path / "photo.png")  # inputs are checked first: give one
    code, err = _main(["predict", str(tmp_path / "photo.png"), "--model", str(tmp_path / "emb")], capsys)
    assert code == 2 and "precomputed embeddings" in err and "Traceback" not in err


def test_heads_stay_fp32_when_the_branches_run_in_bf16_as_on_a_gpu(run):
    """On CUDA predict runs the branches under bf16 autocast (CPU autocast gives the same dtypes to
    check); the heads compute in fp32 so the records' probabilities keep their precision."""
    from geocli.heads.locations import average_views, to_records

    model = load_checkpoint(run / "run")
    crops = Preprocess.from_dict(model.config.branch("rgb").preprocess).views("five-crop")(open_image(_photo(run)))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model({"rgb": torch.stack(crops)})
    assert out["heads"]["country"]["logits"].dtype == torch.float32
    records = to_records(model, average_views(out, 5), 3)
    assert len(records) == 1 and len(records[0]["predictions"]) == 3
    assert all(isinstance(p["probability"], float) for p in records[0]["predictions"])


def test_average_views_folds_probabilities_and_coordinates():
    from geocli.heads.locations import average_views

    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [1.0, 0.0]])
    coords = torch.tensor([[10.0, 179.0], [10.0, -179.0], [-5.0, 20.0], [5.0, 20.0]])
    out = {"embedding": torch.ones(4, 3), "tokens": None,
           "heads": {"country": {"logits": logits}, "regression": {"coords": coords}}}
    folded = average_views(out, 2)
    probs = folded["heads"]["country"]["logits"].softmax(-1)
    torch.testing.assert_close(probs, torch.stack([logits[:2].softmax(-1).mean(0), logits[2:].softmax(-1).mean(0)]))
    lat_lon = folded["heads"]["regression"]["coords"]
    assert abs(abs(float(lat_lon[0, 1])) - 180.0) < 1e-6  # across the antimeridian, not to lon 0
    torch.testing.assert_close(lat_lon[1], torch.tensor([0.0, 20.0]), atol=1e-5, rtol=0)
    assert folded["embedding"].shape == (2, 3) and folded["tokens"] is None
