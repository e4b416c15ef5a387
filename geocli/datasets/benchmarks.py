"""Public geolocation benchmarks: Im2GPS, Im2GPS3k, YFCC26k, YFCC4k and MP-16-style CSVs.

The user passes ``--metadata`` (the official CSV, GeoEstimation's ``*_places365.csv`` format:
``IMG_ID,AUTHOR,LAT,LON,S3_Label,...``) and ``--root`` (the image folder). When ``--metadata`` is
omitted, the usual file name is looked for in the root. Images are not shipped: users download them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from geocli.errors import DatasetNotFoundError
from geocli.registry import Registry
from geocli.datasets.manifest import Manifest, read_manifest


@dataclass(frozen=True)
class Benchmark:
    name: str
    metadata_file: str
    size: int | None
    description: str


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")

for _b in (
    Benchmark("im2gps", "im2gps_places365.csv", 237, "Im2GPS test set (Hays & Efros 2008)"),
    Benchmark("im2gps3k", "im2gps3k_places365.csv", 2997, "Im2GPS3k (Vo et al. 2017)"),
    Benchmark("yfcc26k", "yfcc25600_places365.csv", 25600, "YFCC26k validation set (Müller-Budack et al. 2018)"),
    Benchmark("yfcc4k", "yfcc4k_places365.csv", 4536, "YFCC4k (Vo et al. 2017)"),
    Benchmark("mp16", "mp16_places365.csv", None, "MP-16 training set (Larson et al. 2017), or any CSV in its format"),
):
    BENCHMARKS.register(_b.name)(_b)


def is_benchmark(name: str) -> bool:
    return name in BENCHMARKS


def load_benchmark(name: str, root: str | Path | None = None, metadata: str | Path | None = None) -> Manifest:
    """Rows of benchmark ``name``: image paths under ``root``, true coordinates, S3 scenes."""
    bench = BENCHMARKS.get(name)
    root_path = Path(root) if root is not None else None
    if metadata is None:
        metadata = _find_metadata(bench, root_path)
    metadata = Path(metadata)
    if not metadata.is_file():
        raise DatasetNotFoundError(f"{name}: metadata file not found: {metadata}")
    return read_manifest(metadata, root=root_path if root_path is not None else metadata.parent)


def _find_metadata(bench: Benchmark, root: Path | None) -> Path:
    candidates = [] if root is None else [root / bench.metadata_file, root.parent / bench.metadata_file]
    for c in candidates:
        if c.is_file():
            return c
    where = f" (looked in {', '.join(str(c) for c in candidates)})" if candidates else ""
    raise DatasetNotFoundError(
        f"{bench.name}: pass --metadata {bench.metadata_file} (GeoEstimation's official CSV){where}"
    )
