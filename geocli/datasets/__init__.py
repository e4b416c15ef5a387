"""Datasets: manifests, benchmarks, splits and samplers. Samples are dicts."""
from geocli.datasets.benchmarks import BENCHMARKS, load_benchmark
from geocli.datasets.manifest import Manifest, check_images, read_manifest


def load_dataset(dataset: str, root=None, metadata=None) -> Manifest:
    """A benchmark by name (``im2gps3k``...), a manifest CSV by path, or webdataset shards (a
    folder or brace pattern: their labels, the images named as when they were written)."""
    from geocli.datasets.shards import is_shard_spec, shard_manifest

    if dataset in BENCHMARKS:
        return load_benchmark(dataset, root=root, metadata=metadata)
    if is_shard_spec(dataset):
        return shard_manifest(dataset)
    return read_manifest(dataset, root=root)


__all__ = ["BENCHMARKS", "Manifest", "check_images", "load_benchmark", "load_dataset", "read_manifest"]
