"""Datasets: manifests, benchmarks, splits and samplers. Samples are dicts."""
from geocli.datasets.benchmarks import BENCHMARKS, load_benchmark
from geocli.datasets.manifest import Manifest, check_images, read_manifest


def load_dataset(dataset: str, root=None, metadata=None) -> Manifest:
    """A benchmark by name (``im2gps3k``...) or a manifest CSV by path."""
    if dataset in BENCHMARKS:
        return load_benchmark(dataset, root=root, metadata=metadata)
    return read_manifest(dataset, root=root)


__all__ = ["BENCHMARKS", "Manifest", "check_images", "load_benchmark", "load_dataset", "read_manifest"]
