"""Write labelled uint8 images under `<run_dir>/data/` as ImageFolder files, Hugging Face image
Parquet or WebDataset tars, behind one `ShardSink` protocol: `write(images, labels, keys)` any
number of times, then `close()` returns one `ImageShardInfo` per shard.

The same calls give byte-identical files: PNGs are made from bare pixels with fixed settings (no
time or text chunks), tar members carry fixed metadata, Parquet metadata holds no timestamps.

What a shard is, per sink:
- ImageFolder `data/<label>/<key>.png`: one shard per class folder; its sha256 is the sha256 of the
  `sha256sum` listing of its files in sorted name order, so
  `cd data/<label> && LC_ALL=C ls | xargs sha256sum | sha256sum` reproduces it.
- HF Parquet `data/<split>-0000k-of-0000n.parquet`: `rows_per_shard` rows each. n is known only at
  close, so shards are written as hidden `.<split>-0000k.parquet.partial` and renamed then.
- WebDataset `data/part-0000k.tar`: `rows_per_shard` samples each, `<key>.cls` then `<key>.png`,
  in write order. Class names go to `data/label_names.json` (tars have no place for them).

Keys become file names: characters other than letters, digits, '-' and '_' are replaced by '_'
(WebDataset splits keys at the first dot); two keys that end up equal are refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from synthaug.errors import BadInput
from synthaug.io.image_sources import LABEL_NAMES_FILE
from synthaug.io.shards import sha256_file

PNG_COMPRESS_LEVEL = 6
ROW_GROUP_SIZE = 100


@dataclass(frozen=True)
class ImageShardInfo:
    path: str  # relative to the run directory (a folder for ImageFolder shards)
    rows: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


class ShardSink(Protocol):
    def write(self, images: np.ndarray, labels: np.ndarray, keys: list[str]) -> None: ...

    def close(self) -> list[ImageShardInfo]: ...


def png_bytes(image: np.ndarray) -> bytes:
    """One uint8 (H, W, 1 or 3) image as PNG; identical pixels give identical bytes."""
    pixels = image[..., 0] if image.shape[-1] == 1 else image
    buf = io.BytesIO()
    # A fresh image from bare pixels carries no info (ICC, dpi, text) into the file.
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)
    return buf.getvalue()


def check_label_name(name: str) -> None:
    """Refuse a class name that would not be a single plain folder name under data/."""
    reasons = [
        why
        for why, bad in (
            ("it has a path separator", "/" in name or "\\" in name),
            ("it contains '..'", ".." in name),
            ("it has a NUL character", "\0" in name),
            ("it is empty or '.'", name in ("", ".")),
        )
        if bad
    ]
    if reasons:
        raise BadInput(
            f"label {name!r} cannot be a folder under data/ ({reasons[0]}); rename that class in the "
            f"source, or write hf_parquet or webdataset shards"
        )


class _Sink:
    """Checks batches and turns keys into file names; subclasses store one image at a time."""

    def __init__(self, run_dir: str | Path, label_names: list[str], rows_per_shard: int | None = None):
        if rows_per_shard is not None and rows_per_shard < 1:
            raise ValueError(f"rows_per_shard must be at least 1, got {rows_per_shard}")
        self.rows_per_shard = rows_per_shard
        self.run_dir = Path(run_dir)
        self.data_dir = self.run_dir / "data"
        self.label_names = list(label_names)
        self.shards: list[ImageShardInfo] = []
        self._shape: tuple[int, ...] | None = None
        self._keys: dict[str, str] = {}  # file key -> the key it came from
        self._closed = False

    def write(self, images: np.ndarray, labels: np.ndarray, keys: list[str]) -> None:
        if self._closed:
            raise RuntimeError("write after close")
        images, labels = np.asarray(images), np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"images must be uint8 (N, H, W, 1 or 3), got {images.dtype} {images.shape}")
        if self._shape is None:
            self._shape = images.shape[1:]
        elif images.shape[1:] != self._shape:
            raise ValueError(f"every batch must have image shape {self._shape}, got {images.shape[1:]}")
        if len(labels) != len(images) or len(keys) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels and {len(keys)} keys")
        if len(labels) and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= len(self.label_names)):
            raise ValueError(f"labels must be integer class indices in [0, {len(self.label_names)})")
        names = [self._file_key(str(k)) for k in keys]  # refuse a colliding key before writing the batch
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for image, label, name in zip(images, labels, names):
            self._write_one(image, int(label), name)

    def close(self) -> list[ImageShardInfo]:
        if not self._closed:
            self._finish()
            self._closed = True
        return self.shards

    def _file_key(self, key: str) -> str:
        name = re.sub(r"[^A-Za-z0-9_-]", "_", key) or "_"
        if name in self._keys:
            raise BadInput(
                f"sample keys {self._keys[name]!r} and {key!r} both become file name {name!r}; "
                f"give samples distinct keys of letters, digits, '-' and '_'"
            )
        self._keys[name] = key
        return name

    def _write_one(self, image: np.ndarray, label: int, key: str) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def _record(self, path: Path, rows: int) -> None:
        self.shards.append(ImageShardInfo(path.relative_to(self.run_dir).as_posix(), rows, path.stat().st_size, sha256_file(path)))


class ImageFolderSink(_Sink):
    def __init__(self, run_dir: str | Path, label_names: list[str], *, rows_per_shard: int | None = None):
        """`rows_per_shard` is accepted for a uniform factory and unused: a shard is a class folder."""
        for name in label_names:
            check_label_name(name)  # before anything is written
        super().__init__(run_dir, label_names)
        self._files: dict[int, list[tuple[str, str, int]]] = {}  # label -> (file name, sha256, bytes)

    def _write_one(self, image, label, key):
        folder = self.data_dir / self.label_names[label]
        if label not in self._files:
            folder.mkdir(exist_ok=True)
        data = png_bytes(image)
        with (folder / f"{key}.png").open("xb") as fh:  # "x": never overwrite a file already there
            fh.write(data)
        self._files.setdefault(label, []).append((f"{key}.png", hashlib.sha256(data).hexdigest(), len(data)))

    def _finish(self):
        for label in sorted(self._files):
            files = sorted(self._files[label])
            listing = "".join(f"{digest}  {name}\n" for name, digest, _ in files)
            self.shards.append(
                ImageShardInfo(
                    f"data/{self.label_names[label]}",
                    len(files),
                    sum(size for *_, size in files),
                    hashlib.sha256(listing.encode()).hexdigest(),
                )
            )


class HFParquetSink(_Sink):
    def __init__(
        self,
        run_dir: str | Path,
        label_names: list[str],
        *,
        rows_per_shard: int = 1000,
        row_group_size: int = ROW_GROUP_SIZE,
        split: str = "train",
        label_column: str = "label",
    ):
        import pyarrow as pa

        if not re.fullmatch(r"[A-Za-z0-9_]+", split):
            raise BadInput(f"split name {split!r} must be letters, digits and '_' (e.g. train)")
        super().__init__(run_dir, label_names, rows_per_shard)
        self.row_group_size, self.split = row_group_size, split
        self.label_column = label_column
        features = {"image": {"_type": "Image"}, label_column: {"names": self.label_names, "_type": "ClassLabel"}}
        image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        self.schema = pa.schema(
            [("image", image_type), (label_column, pa.int64())], metadata={"huggingface": json.dumps({"info": {"features": features}})}
        )
        self._rows: list[tuple[bytes, str, int]] = []
        self._partials: list[tuple[Path, int]] = []

    def _write_one(self, image, label, key):
        self._rows.append((png_bytes(image), f"{key}.png", label))
        if len(self._rows) >= self.rows_per_shard:
            self._flush()

    def _flush(self):
        import pyarrow as pa
        import pyarrow.parquet as pq

        blobs, paths, labels = zip(*self._rows)
        images = pa.StructArray.from_arrays(
            [pa.array(blobs, pa.binary()), pa.array(paths, pa.string())], fields=list(self.schema.field("image").type)
        )
        table = pa.Table.from_arrays([images, pa.array(labels, pa.int64())], schema=self.schema)
        path = self.data_dir / f".{self.split}-{len(self._partials):05d}.parquet.partial"
        # Statistics and dictionaries only for labels: min/max of PNG bytes help nobody.
        pq.write_table(
            table,
            path,
            row_group_size=self.row_group_size,
            compression="zstd",
            use_dictionary=[self.label_column],
            write_statistics=[self.label_column],
        )
        self._partials.append((path, len(self._rows)))
        self._rows = []

    def _finish(self):
        if self._rows:
            self._flush()
        n = len(self._partials)
        for k, (partial, rows) in enumerate(self._partials):
            final = partial.with_name(f"{self.split}-{k:05d}-of-{n:05d}.parquet")
            partial.rename(final)
            self._record(final, rows)


class WebDatasetSink(_Sink):
    def __init__(self, run_dir: str | Path, label_names: list[str], *, rows_per_shard: int = 1000):
        super().__init__(run_dir, label_names, rows_per_shard)
        self._tar: tarfile.TarFile | None = None
        self._path: Path | None = None
        self._count = 0

    def _write_one(self, image, label, key):
        if self._tar is None:
            self._path = self.data_dir / f"part-{len(self.shards):05d}.tar"
            self._tar = tarfile.open(self._path, "w", format=tarfile.PAX_FORMAT)
        _add_member(self._tar, f"{key}.cls", str(label).encode("ascii"))
        _add_member(self._tar, f"{key}.png", png_bytes(image))
        self._count += 1
        if self._count >= self.rows_per_shard:
            self._end_tar()

    def _end_tar(self):
        self._tar.close()
        self._record(self._path, self._count)
        self._tar, self._path, self._count = None, None, 0

    def _finish(self):
        if self._tar is not None:
            self._end_tar()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / LABEL_NAMES_FILE).write_text(json.dumps(self.label_names, indent=1) + "\n")


SINKS: dict[str, type[_Sink]] = {"imagefolder": ImageFolderSink, "hf_parquet": HFParquetSink, "webdataset": WebDatasetSink}


def open_image_sink(format: str, run_dir: str | Path, label_names: list[str], **options) -> ShardSink:
    """The sink for `format` (imagefolder, hf_parquet, webdataset); options go to its constructor."""
    if format not in SINKS:
        raise BadInput(f"unknown image shard format {format!r}; choose one of {', '.join(SINKS)}")
    return SINKS[format](run_dir, label_names, **options)


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))
