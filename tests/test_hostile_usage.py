"""Usage errors come before any work, in one line; nothing a user types or pipes in (closed
streams, NUL bytes, non-UTF-8 names) reaches them as a traceback; the options that messages name exist."""
from __future__ import annotations

import ast
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import hostile_corpus as H

REPO = Path(__file__).resolve().parents[1]
PREDICT = ["predict", "--model", "evidence", "--no-ocr"]


def _photo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 16), "gray").save(path, format="JPEG")
    return path


def _one_error_line(result, pattern: str) -> None:
    assert result.code == 2 and result.stdout == "", (result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if re.match(r"(geocli: error|Error):", line)]
    assert len(errors) == 1 and re.search(pattern, errors[0]), result.stderr


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail the test if any geolocator gets built: these errors must come first."""
    import geocli.predict.predictor as P

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the usage error")
    monkeypatch.setattr(P, "load_geolocator", refuse)
    import geocli

    monkeypatch.setattr(geocli, "load_model", refuse, raising=False)


@pytest.mark.parametrize("args,message", [
    (["{photo}", "--map", "{tmp}/x.svg"], r"--map needs a \.html or \.png"),
    (["{photo}", "--map", "{tmp}/no/such/folder/x.html"], r"folder .*folder does not exist"),
    (["{photo}", "--map", "{tmp}"], r"--map.*(needs a \.html|is a (folder|directory))"),
    (["{photo}", "--device", "banana"], r"--device 'banana' is not a device name"),
    (["{photo}", "--device", "cuda:99"], r"--device cuda:99: (no CUDA device|this machine has)"),
    (["{photo}", "--device", "xla"], r"--device xla"),
    (["{tmp}/*.nothing"], r"no images to process"),
    (["{tmp}/empty"], r"no images to process"),
])
def test_usage_errors_come_before_any_model_loads(tmp_path, no_model_loads, args, message):
    photo = _photo(tmp_path / "p.jpg")
    (tmp_path / "empty").mkdir()
    result = H.run_cli([*PREDICT, *(a.format(photo=photo, tmp=tmp_path) for a in args)])
    _one_error_line(result, message)


def test_a_bad_device_is_refused_by_eval_and_train_too(tmp_path):
    _one_error_line(H.run_cli(["train", "--data", tmp_path / "m.csv", "--out", tmp_path / "o", "--device", "cuda:99"]),
                    r"--device cuda:99")
    _one_error_line(H.run_cli(["eval", tmp_path / "m.csv", "--model", "evidence", "--device", "nope"]), r"--device 'nope'")


def test_the_readme_globstar_finds_every_level_as_bash_does(tmp_path):
    for rel in ("trip/top.jpg", "trip/day1/a.jpg", "trip/day1/deep/b.jpg", "trip/day2/x/y/c.jpg", "trip/day1/no.txt"):
        _photo(tmp_path / rel) if rel.endswith(".jpg") else (tmp_path / rel).write_text("x")
    wanted = ["top.jpg", "a.jpg", "b.jpg", "c.jpg"]
    for extra in ([], ["--recursive"]):
        result = H.run_cli([*PREDICT, "--format", "jsonl", f"{tmp_path}/trip/**/*.jpg", *extra])
        assert result.code == 0, result.stderr
        assert sorted(Path(json.loads(line)["image"]).name for line in result.stdout.splitlines()) == sorted(wanted)


@pytest.mark.slow
@pytest.mark.parametrize("stream,redirect", [("stdin", "0<&-"), ("stdout", "1>&-")])
def test_a_closed_stream_is_one_line(tmp_path, stream, redirect):
    photo = _photo(tmp_path / "p.jpg")
    args = [sys.executable, "-m", "geocli", *PREDICT, "-" if stream == "stdin" else str(photo)]
    done = subprocess.run(["bash", "-c", f"exec {redirect}; exec \"$@\"", "geocli", *args], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"{stream} is closed" in done.stderr, done.stderr


def test_closed_stdin_and_stdout_are_usage_errors(tmp_path, monkeypatch):
    from geocli.cli.inputs import require_inputs
    from geocli.cli.main import ClosedStdout
    from geocli.errors import UsageError

    monkeypatch.setattr(sys, "stdin", None)  # what Python makes of a closed fd 0
    with pytest.raises(UsageError, match="stdin is closed"):
        require_inputs(("-",))
    with pytest.raises(UsageError, match="stdout is closed"):
        ClosedStdout().write("x")


def test_a_nul_byte_in_a_stdin_path_is_one_error_record(tmp_path):
    good = _photo(tmp_path / "p.jpg")
    result = H.run_cli([*PREDICT, "--format", "jsonl", "-"], stdin=f"{good}\n{tmp_path}/a\0b.jpg\n{good}2\n")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["ok"] for r in records] == [True, False, False] and result.code == 1, result.stderr
    assert "NUL byte" in records[1]["error"] and "\0" not in records[1]["error"]
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "table"])
def test_non_utf8_file_names_are_written_not_crashed_on(tmp_path, fmt, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    folder = tmp_path / "photos"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/caf\xe9-\xff.jpg"  # Latin-1 bytes: not UTF-8
    Image.new("RGB", (24, 16), "gray").save(raw.decode("utf-8", "surrogateescape"), format="JPEG")
    out = tmp_path / f"out.{fmt}"
    result = H.run_cli([*PREDICT, "--format", fmt, "-o", out, folder])
    assert result.code == 0 and "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    data = out.read_bytes()
    if fmt == "csv":
        (row,) = csv.DictReader(data.decode("utf-8", "surrogateescape").splitlines())
        assert os.fsencode(row["image"]) == raw  # the name's own bytes, as the file system has them
    elif fmt in ("json", "jsonl"):
        text = data.decode("utf-8")  # still valid UTF-8 JSON
        record = json.loads(text)[0] if fmt == "json" else json.loads(text)
        assert os.fsencode(record["image"]) == raw
    else:
        assert b"caf\\xe9-\\xff.jpg" in data


def test_a_wrongly_sized_weights_file_is_one_line(tmp_path):
    from geocli.errors import GeocliError
    from geocli.weights.hub import load_state, load_weights_file

    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    wrong = tmp_path / "wrong.safetensors"
    from safetensors.torch import save_file

    save_file({"0.weight": torch.zeros(5, 4), "0.bias": torch.zeros(5)}, str(wrong))
    with pytest.raises(GeocliError, match=r"wrong.safetensors does not fit this architecture: 2 tensors have other "
                                          r"shapes \(e\.g\. 0\.(weight|bias) is \[5(, 4)?\], the model needs \[3(, 4)?\]\)"):
        load_state(net, load_weights_file(wrong), str(wrong))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(os.urandom(64))
    with pytest.raises(GeocliError, match="cannot read it as safetensors"):
        load_weights_file(junk)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(GeocliError, match="junk.pt: cannot read it as a weights file|refusing to load .*junk.pt"):
        load_weights_file(tmp_path / "junk.pt")


def test_wrongly_sized_rgb_weights_are_one_line_from_train(tmp_path):
    import train_helpers as T
    from safetensors.torch import save_file

    data = T.make_manifest(tmp_path / "data", locations=2, views=1)
    weights = tmp_path / "other.safetensors"
    save_file({"patch_embed.proj.weight": torch.zeros(7, 3, 8, 8)}, str(weights))
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"branch_options": {"rgb": T.TINY_VIT}}))
    result = H.run_cli(["train", "--data", data, "--out", tmp_path / "run", "--rgb-model", "vit_tiny_patch16_224",
                        "--rgb-weights", weights, "--config", config, "--epochs", "1"])
    _one_error_line(result, r"other.safetensors does not fit this architecture")


def _messages() -> dict[str, set[str]]:
    """Every ``--option`` spelled in a string inside geocli/ (messages, hints, help), by file."""
    found: dict[str, set[str]] = {}
    for path in (REPO / "geocli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", node.value):
                    found.setdefault(option, set()).add(path.name)
    return found


#: Options of other programs that geocli's texts mention (torchrun, pip).
FOREIGN = {"--nproc_per_node", "--force-reinstall"}


def test_every_option_a_message_names_exists():
    from geocli.cli.main import COMMANDS, cli

    ctx = cli.make_context("geocli", ["--help"], resilient_parsing=True)
    real = {"--help", "--version"}
    for name in COMMANDS:
        for param in cli.get_command(ctx, name).params:
            real.update(o for o in [*param.opts, *param.secondary_opts] if o.startswith("--"))
    for script in (REPO / "bench").glob("*.py"):  # texts may point at a bench script's own options
        real.update(re.findall(r"add_argument\(\s*\"(--[a-z0-9-]+)\"", script.read_text(encoding="utf-8")))
    named = _messages()
    assert "--map" in named and len(named) > 30  # the scan sees the messages
    ghosts = {o: sorted(files) for o, files in named.items() if o not in real | FOREIGN}
    assert ghosts == {}, f"messages name options that do not exist: {ghosts}"
