"""An imaging workflow end to end: a CSV manifest of ``.npy`` files, a pod loading each
array, a pod computing features, run in a pipeline over a Delta Lake store (and rerun)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.typing import NDArray

from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.errors import InputValidationError
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.sources import CSVSource, DictSource
from orcapod.types import ArrayType, Shape

CALLS: list[str] = []


@function_pod(output_keys="image")
def read_image(path: Path) -> Annotated[NDArray[np.uint16], Shape(None, None)]:
    CALLS.append("read")
    return np.load(path)


@function_pod(output_keys=["mean", "profile"])
def features(image: np.ndarray) -> tuple[float, Annotated[NDArray[np.float32], Shape(4)]]:
    CALLS.append("features")
    return float(image.mean()), image[:, :4].mean(axis=0).astype(np.float32)


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["subject,path"]
    for i in range(5):
        np.save(folder / "images" / f"s{i}.npy", rng.integers(0, 4096, (3 + i, 6), np.uint16))
        lines.append(f"s{i},images/s{i}.npy")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder / "manifest.csv"


def test_manifest_to_features_through_a_delta_pipeline(manifest: Path, tmp_path: Path):
    source = CSVSource(manifest, ["subject"], schema={"path": Path})
    CALLS.clear()
    store = DeltaTableDatabase(tmp_path / "store")
    with Pipeline("imaging", pipeline_database=store) as pipeline:
        features.pod(read_image.pod(source))
    pipeline.run()
    assert CALLS.count("read") == 5 and CALLS.count("features") == 5

    rows = list(pipeline.features.iter_packets())
    assert [tag["subject"] for tag, _ in rows] == [f"s{i}" for i in range(5)]
    for i, (_, packet) in enumerate(rows):
        image = np.load(manifest.parent / "images" / f"s{i}.npy")
        assert packet["mean"] == pytest.approx(image.mean())
        profile = packet["profile"]
        assert profile.dtype == np.float32 and profile.shape == (4,)
        assert np.array_equal(profile, image[:, :4].mean(axis=0).astype(np.float32))
    loaded = [p["image"] for _, p in pipeline.read_image.iter_packets()]
    assert [a.shape for a in loaded] == [(3 + i, 6) for i in range(5)]
    assert all(a.dtype == np.uint16 for a in loaded)

    df = pipeline.features.as_pandas_df()
    assert isinstance(df, pd.DataFrame) and df["profile"][0].dtype == np.float32
    assert pipeline.features.as_polars_df().schema["profile"] == pl.Array(pl.Float32, (4,))

    CALLS.clear()
    again = CSVSource(manifest, ["subject"], schema={"path": Path})
    with Pipeline("imaging", pipeline_database=DeltaTableDatabase(tmp_path / "store")) as rerun:
        features.pod(read_image.pod(again))
    rerun.run()
    assert CALLS == []
    assert [p["profile"].tolist() for _, p in rerun.features.iter_packets()] == [
        p["profile"].tolist() for _, p in rows
    ]


def test_lazy_pods_pass_arrays_between_functions():
    rows = [{"k": i, "image": np.full((2, 4), i, np.float64)} for i in range(3)]
    out = features.pod(DictSource(rows, ["k"]))
    assert [p["mean"] for _, p in out.iter_packets()] == [0.0, 1.0, 2.0]
    table = out.as_table()
    assert table.schema.field("profile").type.shape == [4]
    assert out.output_schema()[1] == {"mean": float, "profile": ArrayType("float32", (4,))}


def test_a_pod_refuses_a_stream_whose_arrays_it_cannot_take():
    def needs_rgb(image: Annotated[NDArray[np.uint8], Shape(None, None, 3)]) -> int:
        return int(image.sum())

    pod = FunctionPod(PythonPacketFunction(needs_rgb, "total"))
    gray = DictSource([{"k": 0, "image": np.zeros((2, 2), np.uint8)}], ["k"])
    with pytest.raises(
        InputValidationError, match=r"'image' has type ArrayType\('uint8', \(2, 2\)\)"
    ):
        pod(gray)


def test_batched_arrays_feed_a_function_taking_a_list_of_arrays(tmp_path: Path):
    @function_pod(output_keys="centroid")
    def centroid(profile: list[NDArray[np.float32]]) -> NDArray[np.float32]:
        return np.mean(np.stack(profile), axis=0).astype(np.float32)

    rows = [{"k": i, "image": np.full((2, 4), i, np.float64)} for i in range(4)]
    store = DeltaTableDatabase(tmp_path / "store")
    with Pipeline("batched", pipeline_database=store) as pipeline:
        centroid.pod(features.pod(DictSource(rows, ["k"])).batch(2))
    pipeline.run()
    got = [p["centroid"] for _, p in pipeline.centroid.iter_packets()]
    assert [g.tolist() for g in got] == [[0.5] * 4, [2.5] * 4]
    assert all(g.dtype == np.float32 for g in got)
