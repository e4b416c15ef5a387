"""ONNX Runtime sessions for the OCR models: which execution provider, and how the CPU is used.

``--device cuda`` must not leave OCR on the CPU: ``providers_for`` puts ONNX Runtime's CUDA provider
first when the installed onnxruntime has it (``onnxruntime-gpu``); ``gpu_ocr_available`` tells the
branch whether it has to fall back to another engine (EasyOCR on CUDA). Session options are chosen
for throughput on a shared CPU: threads capped at the physical cores, no busy-wait spinning between
runs (it steals the cores other work needs), full graph optimisation, the memory arena kept.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

CUDA_PROVIDER, CPU_PROVIDER = "CUDAExecutionProvider", "CPUExecutionProvider"


def available_providers() -> list[str]:
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def wants_cuda(device: str | None) -> bool:
    return device is not None and str(device).split(":")[0] == "cuda"


def providers_for(device: str | None, available: Sequence[str] | None = None) -> list:
    """Execution providers, best first: CUDA (on the device's index) when asked for and installed."""
    available = available_providers() if available is None else list(available)
    if wants_cuda(device) and CUDA_PROVIDER in available:
        index = int(str(device).split(":")[1]) if ":" in str(device) else 0
        return [(CUDA_PROVIDER, {"device_id": index}), CPU_PROVIDER]
    return [CPU_PROVIDER]


def gpu_ocr_available(available: Sequence[str] | None = None) -> bool:
    """Whether ONNX Runtime can run the OCR models on CUDA here."""
    return CUDA_PROVIDER in (available_providers() if available is None else available)


def default_threads() -> int:
    """Intra-op threads: the cores this process may use (its affinity), at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def session_options(threads: int | None = None, spinning: bool = False):
    """Options for one OCR session (see the module docstring for why these values)."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.enable_cpu_mem_arena = True
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


class OnnxModel:
    """One ONNX model with a single input and output: ``model(array) -> array``. With ``rewrite``
    the session runs the model after ``geocli.ocr.graph_rewrite``'s exact rewrites (the original
    when they cannot be had or the rewritten file does not load)."""

    def __init__(self, path: str | os.PathLike, device: str | None = None, threads: int | None = None,
                 spinning: bool = False, rewrite: bool = True) -> None:
        from geocli.ocr.graph_rewrite import rewritten_model

        options, providers = session_options(threads, spinning), providers_for(device)
        self.session = None
        if rewrite and (fast := rewritten_model(path)) != str(path):
            self.session = _session(fast, options, providers)
        self.session = self.session or _session(str(path), options, providers, required=True)
        self.input = self.session.get_inputs()[0].name
        self.provider = self.session.get_providers()[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def metadata(self, key: str) -> str | None:
        """A custom metadata entry of the model (the recogniser's character list)."""
        return self.session.get_modelmeta().custom_metadata_map.get(key)


def _session(path: str, options, providers: list, required: bool = False):
    """An inference session for the model file; None (unless ``required``) when it does not load."""
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(path, sess_options=options, providers=providers)
    except Exception:  # onnxruntime raises its own exception types for damaged or unsupported models
        if required:
            raise
        return None
