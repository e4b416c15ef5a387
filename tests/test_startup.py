"""A fast start: `geocli models` and the evidence model load no torch; the light weight tables agree
with what timm and open_clip themselves say."""
from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image

from geocli.weights.availability import OPEN_CLIP_HUB, TIMM_DEFAULT_TAGS, timm_hub_id

HEAVY = ("torch", "timm", "open_clip", "sentence_transformers", "rapidocr_onnxruntime")


def _modules_after(code: str) -> dict:
    script = (f"import sys, json\n{code}\n"
              f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_models_command_imports_no_model_code():
    loaded = _modules_after(
        "from click.testing import CliRunner\nfrom geocli.cli.main import cli\n"
        "r = CliRunner().invoke(cli, ['models', '--format', 'json'])\nassert r.exit_code == 0, r.output\n"
        "assert json.loads(r.output)['models'][0]['weights']")
    assert not any(loaded.values()), loaded


def test_evidence_model_without_ocr_imports_no_model_code(tmp_path):
    Image.new("RGB", (32, 24)).save(tmp_path / "one.jpg")
    loaded = _modules_after(
        "import geocli\n"
        f"records = list(geocli.load_model('evidence', no_ocr=True).predict([{str(tmp_path / 'one.jpg')!r}]))\n"
        "assert records[0]['ok']")
    assert not any(loaded.values()), loaded


def test_light_weight_tables_match_timm_and_open_clip():
    import open_clip
    import timm

    for (model, tag), hub in OPEN_CLIP_HUB.items():
        assert open_clip.get_pretrained_cfg(model, tag)["hf_hub"].strip("/") == hub
    for name, tag in TIMM_DEFAULT_TAGS.items():
        assert timm.models.get_pretrained_cfg(name).tag == tag
    for name in ("vit_base_patch16_224.augreg2_in21k_ft_in1k", "vit_base_patch14_dinov2.lvd142m",
                 "resnet50.tv_in1k", "beit_base_patch16_224.in22k_ft_in22k_in1k", "vit_base_patch16_224"):
        assert timm_hub_id(name) == timm.models.get_pretrained_cfg(name).hf_hub_id
