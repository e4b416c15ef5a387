"""The model's ``ModelConfig`` from a run's ``TrainConfig``: branches with their weights and
trainability, heads with their options and loss weights, the label spaces."""
from __future__ import annotations

from geocli.config import BranchConfig, FusionConfig, HeadConfig, LabelSpaces, ModelConfig, PredictConfig, TrainConfig


def branch_config(name: str, cfg: TrainConfig) -> BranchConfig:
    """One branch: the registered kind that serves it for this run (``kind_for`` its settings), what
    that kind takes from the run (``train_options``), then the run's ``branch_options`` for it.
    Unknown branch names fail listing the registered ones."""
    from geocli.branches import BRANCHES
    from geocli.fusion import FUSIONS

    fusion = FusionConfig.from_dict(cfg.fusion)
    paired = name in FUSIONS.get(fusion.name).joint_branches(fusion)
    user = cfg.branch_options.get(name, {})
    settings = BRANCHES.get(name).run_settings(cfg, name)  # --rgb-model and the like
    kind = BRANCHES.get(name).kind_for(settings)  # e.g. a Hugging Face CLIP for the clip branch
    options = {**BRANCHES.get(kind or name).train_options(cfg, paired, user, settings), **user}
    return BranchConfig(name, kind=kind or "", options=options)


def head_config(name: str, cfg: TrainConfig) -> HeadConfig:
    """A head with the run's label smoothing where the head takes it (``label_smoothing``,
    ``tau_km`` options), then its ``head_options`` and its ``head_weights`` share of the loss."""
    from geocli.heads import HEADS

    run_wide = {"label_smoothing": cfg.label_smoothing, "tau_km": cfg.tau_km}
    taken = {key: value for key, value in run_wide.items() if HEADS.takes(name, key)}
    options = {**taken, **cfg.head_options.get(name, {})}
    return HeadConfig(name, weight=float(cfg.head_weights.get(name, 1.0)), options=options)


def build_model_config(cfg: TrainConfig, labels: LabelSpaces) -> ModelConfig:
    return ModelConfig(
        branches=[branch_config(b, cfg) for b in cfg.branches],
        fusion=FusionConfig.from_dict(cfg.fusion),
        heads=[head_config(h, cfg) for h in cfg.heads],
        labels=labels,
        predict=PredictConfig(tta=cfg.tta),
    )
