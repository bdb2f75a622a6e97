"""Image sources, schema, transform and shard sinks, on tiny images made in tmp_path."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from synthaug.errors import BadInput
from synthaug.io.images import (
    ImageFolderSink,
    WebDatasetSink,
    open_image_sink,
    png_bytes,
    read_images,
)
from synthaug.schema.image import ImageSchema
from synthaug.transforms.image import ImageTransform

SINK_FORMATS = ["imagefolder", "hf_parquet", "webdataset"]


# --- fixtures ------------------------------------------------------------------------------


def _pixels(seed: int, h: int = 6, w: int = 5, c: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buf, format="PNG")
    return buf.getvalue()


def _make_folder(root: Path, classes: dict[str, list[np.ndarray]]) -> Path:
    for name, images in classes.items():
        (root / name).mkdir(parents=True)
        for i, pixels in enumerate(images):
            (root / name / f"{i:03d}.png").write_bytes(_png(pixels))
    return root


def _hf_metadata(names: list[str]) -> dict:
    features = {"image": {"_type": "Image"}, "label": {"names": names, "_type": "ClassLabel"}}
    return {"huggingface": json.dumps({"info": {"features": features}})}


def _write_hf_parquet(path: Path, blobs: list[bytes | None], labels: list[int], names: list[str] | None) -> Path:
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    images = pa.array([{"bytes": b, "path": f"img{i}.png"} for i, b in enumerate(blobs)], image_type)
    table = pa.table({"image": images, "label": pa.array(labels, pa.int64())})
    if names is not None:
        table = table.replace_schema_metadata(_hf_metadata(names))
    pq.write_table(table, path)
    return path


def _write_tar(path: Path, samples: list[tuple[str, dict[str, bytes]]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for key, members in samples:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def small_set():
    """Six RGB 6x5 images over three classes, the last one with no images written first."""
    images = np.stack([_pixels(i) for i in range(6)])
    labels = np.array([0, 1, 0, 1, 2, 0], dtype=np.int64)
    return images, labels, ["cat", "dog", "zebra"]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _write(format: str, run_dir: Path, images, labels, names, batches: int = 1, **options):
    sink = open_image_sink(format, run_dir, names, **options)
    keys = [f"img-{i:03d}" for i in range(len(images))]
    for part in np.array_split(np.arange(len(images)), batches):
        sink.write(images[part], labels[part], [keys[i] for i in part])
    return sink.close()


# --- sources -------------------------------------------------------------------------------


def test_read_imagefolder_sorted_classes_keys_and_pixels(tmp_path):
    cats, dogs = [_pixels(1), _pixels(2)], [_pixels(3)]
    root = _make_folder(tmp_path / "pets", {"dog": dogs, "cat": cats})
    (root / "cat" / "notes.txt").write_text("not an image")  # ignored, as torchvision does

    got = read_images(root)

    assert got.label_names == ["cat", "dog"]
    assert got.keys == ["cat/000.png", "cat/001.png", "dog/000.png"]
    assert got.labels.tolist() == [0, 0, 1] and got.labels.dtype == np.int64
    np.testing.assert_array_equal(got.images, np.stack(cats + dogs))
    schema = got.schema
    assert (schema.height, schema.width, schema.mode, schema.source_format) == (6, 5, "RGB", "imagefolder")
    assert schema.class_counts == {"cat": 2, "dog": 1} and schema.notes == []


def test_read_hf_parquet_with_and_without_class_names(tmp_path):
    images = [_pixels(i, c=1) for i in range(3)]
    named = _write_hf_parquet(tmp_path / "named.parquet", [_png(p) for p in images], [2, 0, 2], ["a", "b", "c"])
    plain = _write_hf_parquet(tmp_path / "plain.parquet", [_png(p) for p in images], [2, 0, 2], None)

    got = read_images(named)
    unnamed = read_images(plain)

    assert got.label_names == ["a", "b", "c"] and got.labels.tolist() == [2, 0, 2]
    assert got.keys == ["named.parquet:0", "named.parquet:1", "named.parquet:2"]
    assert got.images.shape == (3, 6, 5, 1) and got.schema.mode == "L"
    np.testing.assert_array_equal(got.images, np.stack(images))
    assert got.schema.class_counts == {"a": 1, "b": 0, "c": 2} and got.schema.source_format == "hf_parquet"
    assert unnamed.label_names == ["0", "1", "2"]  # index = name, even for the unused class 1


def test_read_hf_parquet_written_by_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    pixels = [_pixels(i) for i in range(4)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["x", "y"])})
    ds = datasets.Dataset.from_dict({"image": [Image.fromarray(p) for p in pixels], "label": [1, 0, 1, 1]}, features=features)
    ds.to_parquet(str(tmp_path / "train.parquet"))

    got = read_images(tmp_path)  # a folder of Parquet files

    assert got.label_names == ["x", "y"] and got.labels.tolist() == [1, 0, 1, 1]
    np.testing.assert_array_equal(got.images, np.stack(pixels))


def test_read_webdataset_tar_file_folder_and_glob(tmp_path):
    pixels = [_pixels(i) for i in range(4)]
    shards = tmp_path / "wds"
    shards.mkdir()
    _write_tar(shards / "a-000.tar", [(f"s{i}", {"png": _png(pixels[i]), "cls": b"%d" % (i % 2)}) for i in (0, 1)])
    # Members in either order, a trailing newline in .cls, and an unrelated member are all fine.
    _write_tar(
        shards / "a-001.tar",
        [("s2", {"cls": b"1\n", "png": _png(pixels[2]), "json": b"{}"}), ("s3", {"png": _png(pixels[3]), "cls": b"0"})],
    )

    one, folder, pattern = (read_images(p) for p in (shards / "a-000.tar", shards, str(shards / "a-*.tar")))

    assert one.keys == ["s0", "s1"] and one.labels.tolist() == [0, 1]
    assert folder.keys == pattern.keys == ["s0", "s1", "s2", "s3"]
    assert folder.labels.tolist() == [0, 1, 1, 0] and folder.label_names == ["0", "1"]
    np.testing.assert_array_equal(folder.images, np.stack(pixels))
    np.testing.assert_array_equal(pattern.images, folder.images)
    assert folder.schema.source_format == "webdataset"


def test_read_sklearn_digits():
    got = read_images("sklearn:digits")

    assert got.images.shape == (1797, 8, 8, 1) and got.images.dtype == np.uint8
    assert got.images.max() == 255 and got.images.min() == 0  # 0..16 scaled to the full byte range
    assert sorted(set(got.labels.tolist())) == list(range(10))
    assert got.label_names == [str(i) for i in range(10)]
    assert got.schema.n_images == 1797 and got.schema.mode == "L" and got.schema.source_format == "sklearn"
    part = got.take(np.flatnonzero(got.labels == 3)[:5])
    assert part.keys == [got.keys[i] for i in np.flatnonzero(got.labels == 3)[:5]]
    assert part.schema.class_counts["3"] == 5 and part.schema.n_images == 5 and len(part) == 5


def test_mixed_sizes_and_modes_are_converted_and_noted(tmp_path):
    rgb = [_pixels(i) for i in range(3)]
    gray = _pixels(7, c=1)
    rgba = np.concatenate([_pixels(8, 8, 8), np.full((8, 8, 1), 9, np.uint8)], axis=-1)
    root = _make_folder(tmp_path / "mixed", {"a": rgb, "b": [gray, rgba]})

    got = read_images(root)  # most common: RGB, 6x5

    assert got.images.shape == (5, 6, 5, 3)
    assert got.schema.notes == [
        "1 image converted from L to RGB",
        "1 image converted from RGBA to RGB",
        "1 image resized from 8x8 to 6x5 (height x width, bilinear)",
    ]
    np.testing.assert_array_equal(got.images[3], np.repeat(gray, 3, axis=-1))
    resized = Image.fromarray(rgba[..., :3]).resize((5, 6), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(got.images[4], np.asarray(resized))

    forced = read_images(root, size=(4, 4), mode="L")

    assert forced.images.shape == (5, 4, 4, 1) and forced.schema.mode == "L"
    assert "3 images converted from RGB to L" in forced.schema.notes
    assert "4 images resized from 6x5 to 4x4 (height x width, bilinear)" in forced.schema.notes


def test_sixteen_bit_gray_is_scaled_and_cmyk_converted(tmp_path):
    wide = np.array([[0, 65535], [257 * 100, 1000]], dtype=np.uint16)
    (tmp_path / "g" / "x").mkdir(parents=True)
    Image.fromarray(wide).save(tmp_path / "g" / "x" / "a.png")  # opens as I;16
    (tmp_path / "c" / "x").mkdir(parents=True)
    Image.new("CMYK", (5, 6), (0, 0, 0, 0)).save(tmp_path / "c" / "x" / "a.jpg")

    gray, cmyk = read_images(tmp_path / "g"), read_images(tmp_path / "c")

    assert gray.images[0, ..., 0].tolist() == [[0, 255], [100, 4]]  # scaled, not clipped at 255
    assert gray.schema.notes == ["1 image converted from I;16 to L"]
    assert cmyk.schema.mode == "RGB" and cmyk.schema.notes == ["1 image converted from CMYK to RGB"]
    assert cmyk.images.min() >= 250  # CMYK all-zero ink is white


# --- schema and transform ------------------------------------------------------------------


def test_image_schema_json_round_trip(tmp_path):
    schema = read_images("sklearn:digits", size=(4, 4)).schema

    again = ImageSchema.model_validate_json(schema.model_dump_json())
    schema.save(tmp_path / "schema.json")

    assert again == schema and ImageSchema.load(tmp_path / "schema.json") == schema
    assert list(again.class_counts) == again.label_names and again.channels == 1
    (tmp_path / "bad.json").write_text('{"modality": "image"}')
    with pytest.raises(BadInput, match="bad.json: not a synthaug image schema"):
        ImageSchema.load(tmp_path / "bad.json")


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_transform_round_trip_is_exact(value_range):
    every_level = np.arange(256, dtype=np.uint8).reshape(4, 8, 8, 1)
    rgb = np.random.default_rng(0).integers(0, 256, (3, 4, 5, 3), dtype=np.uint8)
    gray_t = ImageTransform((8, 8), "L", value_range)
    rgb_t = ImageTransform.from_state(json.loads(json.dumps(ImageTransform((4, 5), "RGB", value_range).state_dict())))

    encoded = gray_t.encode(every_level)

    assert encoded.dtype == np.float32 and encoded.shape == (4, 1, 8, 8)
    assert encoded.min() == value_range[0] and encoded.max() == value_range[1]
    np.testing.assert_array_equal(gray_t.decode(encoded), every_level)
    np.testing.assert_array_equal(rgb_t.decode(rgb_t.encode(rgb)), rgb)
    assert rgb_t.encode(rgb).shape == (3, 3, 4, 5)


def test_transform_decode_clips_rounds_and_takes_tensors():
    t = ImageTransform((1, 4), "L", (-1.0, 1.0))
    values = np.array([[[[-3.0, np.nan, 0.0, 7.0]]]], dtype=np.float32)

    assert t.decode(values)[0, 0, :, 0].tolist() == [0, 0, 128, 255]
    torch = pytest.importorskip("torch")
    assert t.decode(torch.tensor(values)).tolist() == t.decode(values).tolist()
    with pytest.raises(ValueError, match="encode expects uint8"):
        t.encode(np.zeros((1, 1, 4, 3), np.uint8))


# --- sinks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("format", SINK_FORMATS)
def test_sink_round_trip_gives_identical_pixels_labels_and_names(tmp_path, small_set, format):
    images, labels, names = small_set
    names = names[:2]
    labels = labels % 2

    shards = _write(format, tmp_path / "run", images, labels, names, rows_per_shard=4)
    back = read_images(tmp_path / "run" / "data")

    # ImageFolder reads class by class; the other formats keep the write order.
    order = np.argsort(labels, kind="stable") if format == "imagefolder" else np.arange(len(labels))
    np.testing.assert_array_equal(back.images, images[order])
    assert back.labels.tolist() == labels[order].tolist()
    assert back.label_names == names
    assert sum(s.rows for s in shards) == len(images)
    for shard in shards:
        path = tmp_path / "run" / shard.path
        if path.is_file():  # Parquet and tar shards: size and sha256 are the file's own
            assert shard.bytes == path.stat().st_size
            assert shard.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("format", SINK_FORMATS)
def test_sink_same_input_gives_byte_identical_shards(tmp_path, small_set, format):
    images, labels, names = small_set

    first = _write(format, tmp_path / "one", images, labels, names)
    second = _write(format, tmp_path / "two", images, labels, names, batches=3)  # batching must not matter

    assert [s.to_dict() for s in first] == [s.to_dict() for s in second]
    assert _files(tmp_path / "one") == _files(tmp_path / "two")
    different = images.copy()
    different[0, 0, 0, 0] ^= 1
    third = _write(format, tmp_path / "three", different, labels, names)
    assert [s.sha256 for s in third] != [s.sha256 for s in first]


def test_png_has_no_time_or_text_chunks():
    data = png_bytes(_pixels(0))
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunks.append(data[pos + 4 : pos + 8].decode())
        pos += 12 + length

    assert chunks == ["IHDR", "IDAT", "IEND"]


def test_imagefolder_sink_layout_and_folder_hash(tmp_path, small_set):
    images, labels, names = small_set

    shards = _write("imagefolder", tmp_path / "run", images, labels, names)

    data = tmp_path / "run" / "data"
    assert sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png")) == [
        "cat/img-000.png",
        "cat/img-002.png",
        "cat/img-005.png",
        "dog/img-001.png",
        "dog/img-003.png",
        "zebra/img-004.png",
    ]
    cat = shards[0]
    listing = "".join(
        f"{hashlib.sha256((data / 'cat' / n).read_bytes()).hexdigest()}  {n}\n" for n in sorted(p.name for p in (data / "cat").iterdir())
    )
    assert (cat.path, cat.rows, cat.sha256) == ("data/cat", 3, hashlib.sha256(listing.encode()).hexdigest())
    assert cat.bytes == sum(p.stat().st_size for p in (data / "cat").iterdir())


def test_hf_parquet_shards_names_row_groups_and_metadata(tmp_path):
    images = np.stack([_pixels(i, 4, 4) for i in range(250)])
    labels = np.arange(250) % 3

    shards = _write("hf_parquet", tmp_path / "run", images, labels, ["a", "b", "c"], rows_per_shard=200)

    assert [(s.path, s.rows) for s in shards] == [("data/train-00000-of-00002.parquet", 200), ("data/train-00001-of-00002.parquet", 50)]
    assert sorted(p.name for p in (tmp_path / "run" / "data").iterdir()) == [Path(s.path).name for s in shards]
    first = pq.ParquetFile(tmp_path / "run" / shards[0].path)
    assert [first.metadata.row_group(i).num_rows for i in range(first.num_row_groups)] == [100, 100]
    assert first.schema_arrow.field("image").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    assert first.schema_arrow.field("label").type == pa.int64()
    features = json.loads(first.schema_arrow.metadata[b"huggingface"])["info"]["features"]
    assert features == {"image": {"_type": "Image"}, "label": {"names": ["a", "b", "c"], "_type": "ClassLabel"}}


def test_hf_parquet_shards_load_in_datasets_with_source_features(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pixels = [_pixels(i) for i in range(5)]
    source = _write_hf_parquet(tmp_path / "src.parquet", [_png(p) for p in pixels], [0, 2, 1, 2, 0], ["ant", "bee", "cow"])
    real = read_images(source)

    shards = _write("hf_parquet", tmp_path / "run", real.images, real.labels, real.label_names)
    loaded = datasets.load_dataset(
        "parquet", data_files=[str(tmp_path / "run" / s.path) for s in shards], split="train", cache_dir=str(tmp_path / "hf-cache")
    )

    source_features = datasets.Features.from_arrow_schema(pq.read_schema(source))
    assert loaded.features == source_features
    assert loaded.features["label"] == datasets.ClassLabel(names=["ant", "bee", "cow"])
    assert isinstance(loaded.features["image"], datasets.Image)
    assert loaded["label"] == [0, 2, 1, 2, 0]
    for row, expected in zip(loaded, pixels):
        np.testing.assert_array_equal(np.asarray(row["image"]), expected)


def test_webdataset_tars_read_by_webdataset_package(tmp_path, small_set):
    wds = pytest.importorskip("webdataset")
    images, labels, names = small_set

    shards = _write("webdataset", tmp_path / "run", images, labels, names, rows_per_shard=4)
    urls = [str(tmp_path / "run" / s.path) for s in shards]
    samples = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False))

    assert [s.path for s in shards] == ["data/part-00000.tar", "data/part-00001.tar"]
    assert [s["__key__"] for s in samples] == [f"img-{i:03d}" for i in range(6)]
    assert [int(s["cls"]) for s in samples] == labels.tolist()
    assert [s["png"] for s in samples] == [png_bytes(im) for im in images]
    with tarfile.open(urls[0]) as tar:
        members = tar.getmembers()
    assert [m.name for m in members[:2]] == ["img-000.cls", "img-000.png"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}


def test_sink_keys_become_safe_file_names_and_collisions_are_refused(tmp_path, small_set):
    images, labels, names = small_set
    sink = WebDatasetSink(tmp_path / "run", names)

    sink.write(images[:2], labels[:2], ["../a.b/c", "x y"])
    with pytest.raises(BadInput, match=r"sample keys '\.\./a\.b/c' and '__/a_b_c' both become file name"):
        sink.write(images[2:3], labels[2:3], ["__/a_b_c"])
    sink.close()

    assert read_images(tmp_path / "run" / "data").keys == ["___a_b_c", "x_y"]


# --- bad input -----------------------------------------------------------------------------


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_corrupt_and_truncated_image_files_are_named(tmp_path):
    root = _make_folder(tmp_path / "bad", {"a": [_pixels(0)]})
    (root / "a" / "zz-garbage.png").write_bytes(b"this is not a png")
    with pytest.raises(BadInput) as garbage:
        read_images(root)
    assert "zz-garbage.png: cannot decode image" in _one_line(garbage)
    assert "replace or remove it" in _one_line(garbage)

    (root / "a" / "zz-garbage.png").unlink()
    whole = _png(_pixels(1, 40, 40))
    (root / "a" / "zz-cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(BadInput, match=r"zz-cut\.png: cannot decode image") as cut:
        read_images(root)
    _one_line(cut)


def test_empty_class_folder_and_folder_without_images(tmp_path):
    root = _make_folder(tmp_path / "pets", {"cat": [_pixels(0)]})
    (root / "dog").mkdir()
    with pytest.raises(BadInput, match=r"pets/dog: class folder has no images .*add images or remove the folder"):
        read_images(root)

    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match=r"empty: no class folders; expected <root>/<label>/<file>\.png"):
        read_images(tmp_path / "empty")
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "a.png").write_bytes(_png(_pixels(0)))
    with pytest.raises(BadInput, match="1 image directly in it: move them into class folders"):
        read_images(loose)
    with pytest.raises(BadInput, match="nowhere: not found; check source.path"):
        read_images(tmp_path / "nowhere")


def test_parquet_without_image_column_or_with_undecodable_bytes(tmp_path):
    pq.write_table(pa.table({"pixels": [b"x"], "label": [0]}), tmp_path / "noimage.parquet")
    with pytest.raises(BadInput, match=r"noimage\.parquet: no 'image' column \(columns: pixels, label\)") as e:
        read_images(tmp_path / "noimage.parquet")
    _one_line(e)

    bad = _write_hf_parquet(tmp_path / "bad.parquet", [_png(_pixels(0)), b"\x89PNG garbage"], [0, 1], ["a", "b"])
    with pytest.raises(BadInput, match=r"bad\.parquet row 1 \(img1\.png\): cannot decode image") as e:
        read_images(bad)
    _one_line(e)

    nolabel = _write_hf_parquet(tmp_path / "unlabelled.parquet", [_png(_pixels(0))], [-1], ["a"])
    with pytest.raises(BadInput, match=r"unlabelled\.parquet row 0 \(img0\.png\): label is -1"):
        read_images(nolabel)


@pytest.mark.parametrize(
    "label, why", [("a/b", "path separator"), ("..", "contains '..'"), ("x\\..\\y", "path separator"), ("nul\0", "NUL character")]
)
def test_unsafe_label_names_never_write_outside_data(tmp_path, small_set, label, why):
    images, labels, _ = small_set
    names = ["ok", label, "fine"]

    with pytest.raises(BadInput, match=f"cannot be a folder under data/ \\(.*{why}") as e:
        ImageFolderSink(tmp_path / "run", names)
    _one_line(e)

    assert not (tmp_path / "run").exists()  # refused before anything was written
    # Formats that keep names as data, not paths, take the same names.
    shards = _write("hf_parquet", tmp_path / "hf", images, labels, names)
    assert read_images(tmp_path / "hf" / shards[0].path).label_names == names


def test_unsupported_mode_is_refused_and_named(tmp_path):
    buf = io.BytesIO()
    Image.new("F", (5, 6), 0.5).save(buf, format="TIFF")  # 32-bit float: no 8-bit meaning
    path = _write_hf_parquet(tmp_path / "float.parquet", [buf.getvalue()], [0], ["a"])

    with pytest.raises(
        BadInput,
        match=r"float\.parquet row 0 \(img0\.png\): image mode 'F' is not supported"
        r".*convert it to 8-bit L or RGB first",
    ) as e:
        read_images(path)
    _one_line(e)


def test_unknown_builtin_and_bad_webdataset_samples(tmp_path):
    with pytest.raises(
        BadInput,
        match=r"source\.path: unknown built-in data set 'sklearn:iris'; available: "
        r"sklearn:digits",
    ):
        read_images("sklearn:iris")

    png = _png(_pixels(0))
    _write_tar(tmp_path / "nocls.tar", [("k1", {"png": png})])
    with pytest.raises(BadInput, match=r"nocls\.tar sample 'k1': is missing a \.cls label"):
        read_images(tmp_path / "nocls.tar")
    _write_tar(tmp_path / "word.tar", [("k1", {"png": png, "cls": b"cat"})])
    with pytest.raises(BadInput, match=r"word\.tar sample 'k1': \.cls holds 'cat', not a class index"):
        read_images(tmp_path / "word.tar")
    whole = _write_tar(tmp_path / "whole.tar", [(f"k{i}", {"png": _png(_pixels(i, 20, 20)), "cls": b"0"}) for i in range(3)]).read_bytes()
    for cut in (len(whole) // 2, 512 * 4):  # mid-member, and between members
        (tmp_path / "cut.tar").write_bytes(whole[:cut])
        with pytest.raises(BadInput, match=r"cut\.tar: not a complete tar file .*; re-create it"):
            read_images(tmp_path / "cut.tar")
    (tmp_path / "notes.csv").write_text("a,b\n")
    with pytest.raises(BadInput, match=r"notes\.csv: not an image source"):
        read_images(tmp_path / "notes.csv")
