"""geocli train: checkpoint folders that load and predict, the embedding cache, resume, Ctrl-C,
fine-tuning, splits, label spaces and the CLI's one-line errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import train_helpers as T
from geocli.branches.base import Preprocess
from geocli.cli.main import cli
from geocli.training import loaders
from geocli.training import trainer as train_engine
from geocli.store.checkpoint import load_checkpoint, read_checkpoint_config
from geocli.training.trainer import train
from geocli.datasets.splits import choose_split
from geocli.geo.cells import cell_specs
from geocli.training.data import load_splits
from geocli.store.run_folder import load_run_state
from geocli.images import open_image


def _count_encodes(monkeypatch) -> list[int]:
    """Record how many images every frozen-branch encode call gets."""
    calls: list[int] = []
    original = loaders.vector_encoder

    def counting(module, batch_size):
        encode = original(module, batch_size)

        def wrapped(paths):
            calls.append(len(paths))
            return encode(paths)
        return wrapped

    monkeypatch.setattr(loaders, "vector_encoder", counting)
    return calls


def _predict(folder, image_path):
    model = load_checkpoint(folder)
    pre = Preprocess.from_dict(model.config.branch("rgb").preprocess)
    return model.predict({"rgb": pre.transform(False)(open_image(image_path))[None]})


def test_checkpoint_folder_loads_and_predicts(tmp_path):
    cfg = T.tiny_config(tmp_path)
    result = train(cfg, progress=False)
    assert result.epoch == 2 and len(result.history) == 2
    doc = read_checkpoint_config(cfg.out)
    labels = doc["model"]["labels"]
    assert labels["countries"] and len(labels["geocells"]["partitions"]) == 3
    assert doc["train"]["epoch"] == 2 and doc["train"]["split"] == "group"
    records = _predict(cfg.out, tmp_path / "data" / "img" / "r0_l0_v0.png")
    top = records[0]["predictions"][0]
    assert -90 <= top["lat"] <= 90 and records[0]["country_head"][0]["country"] in labels["countries"]
    val = result.history[-1]["val"]
    assert {"loss", "median_km", "accuracy", "country_accuracy"} <= set(val)


def test_second_run_hits_the_cache_and_never_encodes(tmp_path, monkeypatch):
    calls = _count_encodes(monkeypatch)
    train(T.tiny_config(tmp_path, epochs=1), progress=False)
    first = sum(calls)
    assert first == 54  # every image once (train + val)
    train(T.tiny_config(tmp_path, epochs=1, out=str(tmp_path / "run2"), lr=1e-3), progress=False)
    assert sum(calls) == first  # heads retrained, the frozen branch never ran again


def test_resume_continues_from_the_saved_epoch(tmp_path):
    cfg = T.tiny_config(tmp_path, epochs=1)
    train(cfg, progress=False)
    assert load_run_state(cfg.out)["epoch"] == 1
    more = T.tiny_config(tmp_path, epochs=3)
    result = train(more, resume=cfg.out, progress=False)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    state = load_run_state(cfg.out)
    assert state["epoch"] == 3 and state["optimizer"]["state"]  # AdamW moments came back as tensors


def test_ctrl_c_leaves_a_loadable_checkpoint(tmp_path, monkeypatch):
    original = train_engine.Trainer._train_epoch

    def interrupt_in_epoch_two(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(train_engine.Trainer, "_train_epoch", interrupt_in_epoch_two)
    cfg = T.tiny_config(tmp_path, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    state = load_run_state(cfg.out)
    assert state["epoch"] == 1 and state["interrupted"] is True
    assert _predict(cfg.out, tmp_path / "data" / "img" / "r1_l0_v0.png")[0]["predictions"]
    monkeypatch.setattr(train_engine.Trainer, "_train_epoch", original)
    assert train(cfg, resume=cfg.out, progress=False).epoch == 3


def test_finetune_updates_the_backbone_and_saves_it(tmp_path, monkeypatch):
    cfg = T.tiny_config(tmp_path, trainable="finetune", epochs=1, flip=True, optimizer="sgd",
                        scheduler="plateau", class_weights="inverse-frequency", sampler="uniform")
    key = "branches.rgb.model.blocks.0.attn.qkv.weight"
    before, original = {}, train_engine.Trainer._train_epoch

    def copy_weights_then_train(self, epoch):
        before.setdefault(key, self.model.state_dict()[key].detach().clone())
        return original(self, epoch)

    monkeypatch.setattr(train_engine.Trainer, "_train_epoch", copy_weights_then_train)
    result = train(cfg, progress=False)
    model = load_checkpoint(cfg.out)
    assert model.config.branch("rgb").options["trainable"] == "finetune"
    assert np.isfinite(result.history[0]["train_loss"])
    assert not torch.equal(model.state_dict()[key], before[key])


def test_group_split_is_default_and_random_split_warns(tmp_path):
    cfg = T.tiny_config(tmp_path)
    lines: list[str] = []
    train_m, val_m, how = load_splits(cfg, lines.append)
    assert how == "group" and not set(train_m.group) & set(val_m.group)
    assert choose_split(train_m, "random", lines.append) == "random"
    assert "leakage" in lines[-1]


def test_cell_thresholds_scale_to_small_datasets():
    specs = cell_specs(400)
    assert [s.max_samples for s in specs] == [100, 34, 10]
    assert all(1 <= s.min_samples <= s.max_samples for s in specs)
    big = cell_specs(5_000_000)
    assert [(s.min_samples, s.max_samples) for s in big] == [(50, 5000), (50, 2000), (50, 1000)]
    assert [(s.min_samples, s.max_samples) for s in cell_specs(10, [[2, 8], [1, 3]])] == [(2, 8), (1, 3)]


def test_cli_json_summary_and_recipe_merge_order(tmp_path, monkeypatch):
    from geocli.training import recipes

    cfg = T.tiny_config(tmp_path)
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "tiny.json").write_text(json.dumps({"description": "t", "train": {"epochs": 5, "lr": 0.5}}))
    monkeypatch.setattr(recipes, "RECIPES_DIR", tmp_path / "recipes")
    settings = {k: v for k, v in cfg.to_dict().items() if k not in ("data", "out", "epochs", "lr")}
    (tmp_path / "c.json").write_text(json.dumps({**settings, "epochs": 3}))
    args = ["train", "--data", cfg.data, "--out", str(tmp_path / "cli"), "--recipe", "tiny",
            "--config", str(tmp_path / "c.json"), "--epochs", "1", "--format", "json"]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["epochs"] == 1 and summary["baseline_centroid"]["median_km"] > 0
    saved = load_run_state(tmp_path / "cli")["config"]
    assert saved["lr"] == 0.5 and saved["epochs"] == 1  # recipe < config file < flags


def test_cli_draws_epoch_bars_only_on_a_terminal_or_when_asked(tmp_path):
    cfg = T.tiny_config(tmp_path)
    (tmp_path / "c.json").write_text(json.dumps({k: v for k, v in cfg.to_dict().items() if k not in ("data", "out")}))
    base = ["train", "--data", cfg.data, "--config", str(tmp_path / "c.json"), "--epochs", "1", "--format", "json"]
    piped = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "a")], catch_exceptions=False)
    asked = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "b"), "--progress"], catch_exceptions=False)
    assert piped.exit_code == 0 and asked.exit_code == 0, piped.output + asked.output
    assert "epoch 1/1:" not in piped.stderr and "it/s" not in piped.stderr  # stderr is not a terminal
    assert "epoch 1/1:" in asked.stderr


@pytest.mark.parametrize("text", ["image,lat,lon\nimg/a.png,95,10\n", "image,latitude\nx.png,1\n"])
def test_bad_manifest_is_refused_with_one_line(tmp_path, text):
    (tmp_path / "bad.csv").write_text(text)
    res = CliRunner().invoke(cli, ["train", "--data", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o")])
    assert res.exit_code != 0
    from geocli.errors import GeocliError

    assert isinstance(res.exception, GeocliError)
    assert len(str(res.exception).splitlines()) == 1 and "bad.csv" in str(res.exception)
    assert not (tmp_path / "o").exists()


def test_scene_head_is_left_out_without_scene_labels(tmp_path):
    """An untrained scene head would print confident nonsense: no labels, no head, and a warning."""
    data = tmp_path / "data"
    T.make_manifest(data)
    lines = (data / "manifest.csv").read_text().splitlines()
    (data / "manifest.csv").write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    logged: list[str] = []
    cfg = T.tiny_config(tmp_path, epochs=1, heads=["country", "geocell", "scene"])
    train(cfg, log=logged.append, progress=False)
    heads = [h["name"] for h in read_checkpoint_config(cfg.out)["model"]["heads"]]
    assert heads == ["country", "geocell"] and any("scene head is left out" in line for line in logged)
    with_scenes = T.tiny_config(tmp_path / "b", epochs=1, heads=["country", "geocell", "scene"])
    train(with_scenes, progress=False)
    model = load_checkpoint(with_scenes.out)
    assert model.heads["scene"].classes == ["indoor", "natural", "urban"]


def test_best_epoch_is_kept_beside_the_run(tmp_path):
    from geocli.store.run_folder import best_folder
    from geocli.training.callbacks import best_score

    cfg = T.tiny_config(tmp_path, epochs=4, lr=5e-2)
    result = train(cfg, progress=False)
    scores = [best_score(row) for row in result.history]
    best_epoch = 1 + min(range(len(scores)), key=lambda i: (scores[i], i))
    doc = read_checkpoint_config(best_folder(cfg.out))
    assert doc["train"]["epoch"] == best_epoch and doc["train"]["val"]["median_km"] == min(scores)
    from geocli import load_model

    photo = str(tmp_path / "data" / "img" / "r0_l0_v0.png")
    record = next(iter(load_model(str(best_folder(cfg.out)), cache=False).predict([photo])))
    assert record["ok"] and record["predictions"]  # a plain checkpoint: predict and eval take it
