"""Read labelled images from an ImageFolder tree, Hugging Face image Parquet, WebDataset tars or
`sklearn:digits` into one in-memory `ImageSet` of a single size and mode.

Every source becomes a list of items (key, label, where, opener); `_load` then reads headers to
pick the target size/mode (the most common ones unless given), decodes, converts, and reports
each conversion in the schema notes. Every failure is a one-line BadInput naming the file or row.
"""

from __future__ import annotations

import glob
import io
import json
import re
import tarfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from synthaug.errors import BadInput
from synthaug.schema.image import CHANNELS, ImageSchema, SourceFormat, infer_image_schema

# torchvision's ImageFolder extensions, matched case-insensitively.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
RESAMPLE = Image.Resampling.BILINEAR  # fixed, so the same source always gives the same pixels
RESAMPLE_NAME = "bilinear"
# Written by WebDatasetSink next to its tars: tars have no place for class names.
LABEL_NAMES_FILE = "label_names.json"
BUILTINS = ("sklearn:digits",)

_GRAY_MODES = {"1", "L", "LA", "I;16", "I;16L", "I;16B", "I;16N"}
_CONVERTIBLE = _GRAY_MODES | {"P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
# WebDataset's own key/extension split: the key ends at the first dot of the file name.
_WDS_NAME = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")


@dataclass(eq=False)  # arrays inside: compare fields, not sets
class ImageSet:
    images: np.ndarray  # uint8 (N, H, W, C), C = 1 (L) or 3 (RGB)
    labels: np.ndarray  # int64 (N,), index into label_names
    label_names: list[str]
    keys: list[str]  # stable ids in the source: relative paths, "<file>:<row>", tar keys
    schema: ImageSchema

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices) -> ImageSet:
        """The images at `indices` (e.g. a train split), with class counts recounted."""
        idx = np.asarray(indices, dtype=np.int64)
        images, labels = self.images[idx], self.labels[idx]
        schema = self.schema.model_copy(
            update={"class_counts": dict(zip(self.label_names, np.bincount(labels, minlength=len(self.label_names)).tolist()))}
        )
        return ImageSet(images, labels, list(self.label_names), [self.keys[i] for i in idx], schema)


@dataclass(frozen=True)
class _Item:
    key: str
    label: int
    where: str  # names the file or row in error messages
    open: Callable[[], Image.Image]


def read_images(
    path_or_spec: str | Path,
    *,
    size: tuple[int, int] | None = None,
    mode: Literal["L", "RGB"] | None = None,
    format: SourceFormat | None = None,
    label_column: str = "label",
    key: str = "source.path",
) -> ImageSet:
    """Read every image of a source, converted to `size` (height, width) and `mode`.

    `format` is detected when None: `sklearn:<name>`; a `.parquet` file, folder or glob
    (Hugging Face image layout); a `.tar` file, folder or glob (WebDataset); else an ImageFolder
    root `<root>/<label>/<file>`. `key` is the config key named in error messages.
    """
    if mode is not None and mode not in CHANNELS:
        raise BadInput(f"image mode must be 'L' or 'RGB', got {mode!r}; fix the mode setting")
    if size is not None and (len(size) != 2 or min(int(v) for v in size) <= 0):
        raise BadInput(f"image size must be (height, width) with positive values, got {size!r}")
    if format not in (None, "imagefolder", "hf_parquet", "webdataset", "sklearn"):
        raise BadInput(f"unknown image source format {format!r}; use imagefolder, hf_parquet or webdataset")
    size = None if size is None else (int(size[0]), int(size[1]))
    spec = str(path_or_spec)
    if spec.startswith("sklearn:"):
        fmt, items, names, notes = "sklearn", *_sklearn_items(spec, key)
    else:
        fmt, paths = _detect(spec, format, key)
        notes = []
        if fmt == "imagefolder":
            items, names = _imagefolder_items(paths[0], key)
        elif fmt == "hf_parquet":
            items, names = _parquet_items(paths, label_column, key)
        else:
            items, names = _webdataset_items(paths, key)
    images, labels, notes = _load(items, size, mode, notes)
    schema = infer_image_schema(images, labels, names, source_format=fmt, notes=notes, label_column=label_column)
    return ImageSet(images, labels, names, [it.key for it in items], schema)


# --- finding the source ---------------------------------------------------------------------


def _detect(spec: str, format: str | None, key: str) -> tuple[str, list[Path]]:
    by_suffix = {".parquet": "hf_parquet", ".tar": "webdataset"}
    if any(ch in spec for ch in "*?["):
        paths = [Path(p) for p in sorted(glob.glob(spec)) if Path(p).is_file()]
        if not paths:
            raise BadInput(f"{spec}: no files match this pattern; check {key}")
    elif not Path(spec).exists():
        raise BadInput(f"{spec}: not found; check {key}")
    elif Path(spec).is_dir():
        root = Path(spec)
        if format == "imagefolder":
            return format, [root]
        paths = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in by_suffix)
        if not paths and format is None:
            return "imagefolder", [root]
        if not paths:
            raise BadInput(f"{root}: no .parquet or .tar files for format {format!r}; check {key}")
    else:
        paths = [Path(spec)]
    kinds = {by_suffix.get(p.suffix.lower()) for p in paths}
    if format is None and len(kinds) == 1 and None not in kinds:
        return kinds.pop(), paths
    if format in ("hf_parquet", "webdataset"):
        return format, [p for p in paths if by_suffix.get(p.suffix.lower()) == format] or paths
    found = ", ".join(sorted({p.suffix.lower() or "(no suffix)" for p in paths}))
    raise BadInput(
        f"{spec}: not an image source (found {found} files); point {key} at an ImageFolder root "
        f"<root>/<label>/<file>.png, .parquet files, .tar files or {', '.join(BUILTINS)}"
    )


def _imagefolder_items(root: Path, key: str) -> tuple[list[_Item], list[str]]:
    # Classes are the sorted sub-folder names, as in torchvision's ImageFolder.
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not names:
        loose = [p.name for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        hint = f" ({_count(len(loose))} directly in it: move them into class folders)" if loose else ""
        raise BadInput(
            f"{root}: no class folders{hint}; expected <root>/<label>/<file>.png, or point {key} "
            f"at .parquet or .tar files or {', '.join(BUILTINS)}"
        )
    items = []
    for label, name in enumerate(names):
        files = sorted(
            (p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
            key=lambda p: p.relative_to(root).as_posix(),
        )
        if not files:
            raise BadInput(f"{root / name}: class folder has no images ({', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder")
        for f in files:
            items.append(_Item(f.relative_to(root).as_posix(), label, str(f), partial(Image.open, f)))
    return items, names


def _parquet_items(files: list[Path], label_column: str, key: str) -> tuple[list[_Item], list[str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    items: list[_Item] = []
    names: list[str] | None = None
    for f in files:
        try:
            pf = pq.ParquetFile(f)
            _check_parquet_columns(f, pf.schema_arrow, label_column)
            table = pf.read(columns=["image", label_column])
        except (pa.ArrowException, OSError) as exc:
            raise BadInput(f"{f}: not a readable Parquet file ({_first_line(exc)}); re-export it or fix {key}") from None
        file_names = _class_names(pf.schema_arrow, label_column)
        if names is not None and file_names != names:
            raise BadInput(f"{f}: its class names differ from {files[0]}'s; read files of one dataset together")
        names = file_names
        image = table.column("image").combine_chunks()
        blobs = (image.field("bytes") if pa.types.is_struct(image.type) else image).to_pylist()
        paths = image.field("path").to_pylist() if pa.types.is_struct(image.type) else [None] * len(blobs)
        for row, (blob, path, label) in enumerate(zip(blobs, paths, table.column(label_column).to_pylist())):
            where = f"{f} row {row}" + (f" ({path})" if path else "")
            if blob is None:
                raise BadInput(f"{where}: image has no bytes; embed the image bytes in the Parquet (or drop the row)")
            if label is None or label < 0:
                raise BadInput(f"{where}: label is {label}; every row needs a class index >= 0 (drop unlabelled rows)")
            items.append(_Item(f"{f.name}:{row}", int(label), where, partial(_open_bytes, blob)))
    if not items:
        raise BadInput(f"{files[0]}: has no rows; point {key} at a Parquet file with images")
    top = max(it.label for it in items)
    if names is None:
        names = [str(i) for i in range(top + 1)]  # no ClassLabel names: the index is the name
    elif top >= len(names):
        bad = next(it for it in items if it.label >= len(names))
        raise BadInput(
            f"{bad.where}: label {bad.label} but the huggingface metadata names only {len(names)} classes; fix the label or the metadata"
        )
    return items, names


def _check_parquet_columns(f: Path, schema, label_column: str) -> None:
    import pyarrow as pa

    columns = ", ".join(schema.names)
    if "image" not in schema.names:
        raise BadInput(
            f"{f}: no 'image' column (columns: {columns}); expected Hugging Face image Parquet with "
            f"image struct<bytes, path> and {label_column} int64"
        )
    t = schema.field("image").type
    if not (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or (pa.types.is_struct(t) and t.get_field_index("bytes") >= 0 and t.get_field_index("path") >= 0)
    ):
        raise BadInput(f"{f}: column 'image' is {t}, not struct<bytes: binary, path: string>; save it with datasets' Image() feature")
    if label_column not in schema.names:
        raise BadInput(f"{f}: no {label_column!r} column (columns: {columns}); name the label column (label_column) or add class indices")
    if not pa.types.is_integer(schema.field(label_column).type):
        raise BadInput(
            f"{f}: column {label_column!r} is {schema.field(label_column).type}, not integer class "
            f"indices; store labels as a ClassLabel (int64) column"
        )


def _class_names(schema, label_column: str) -> list[str] | None:
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return None
    try:
        feature = json.loads(raw)["info"]["features"][label_column]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(feature, dict) or feature.get("_type") != "ClassLabel" or not feature.get("names"):
        return None
    names = [str(n) for n in feature["names"]]
    if len(set(names)) != len(names):
        raise BadInput(f"ClassLabel names in the Parquet metadata repeat a name ({names}); make them unique")
    return names


def _webdataset_items(tars: list[Path], key: str) -> tuple[list[_Item], list[str]]:
    items: list[_Item] = []
    for t in tars:
        for sample_key, members in _tar_samples(t):
            where = f"{t} sample {sample_key!r}"
            image_ext = next((e for e in members if "." + e in IMAGE_EXTENSIONS), None)
            if image_ext is None or "cls" not in members:
                missing = "an image (.png or .jpg)" if image_ext is None else "a .cls label"
                raise BadInput(f"{where}: is missing {missing}; every sample needs <key>.png and <key>.cls")
            text = members["cls"].decode("ascii", "replace").strip()
            if not re.fullmatch(r"\d+", text):
                raise BadInput(f"{where}: .cls holds {text[:20]!r}, not a class index; write it as ASCII digits")
            items.append(_Item(sample_key, int(text), f"{where} ({sample_key}.{image_ext})", partial(_open_bytes, members[image_ext])))
    if not items:
        raise BadInput(f"{tars[0]}: no samples; expected <key>.png + <key>.cls members (or fix {key})")
    top = max(it.label for it in items)
    names = _sidecar_names(tars[0].parent / LABEL_NAMES_FILE)
    if names is None:
        return items, [str(i) for i in range(top + 1)]
    if top >= len(names):
        raise BadInput(
            f"{tars[0].parent / LABEL_NAMES_FILE}: names {len(names)} classes but a sample has label {top}; fix the file or the labels"
        )
    return items, names


def _tar_samples(path: Path):
    """Yield (key, {extension: bytes}) per run of consecutive members with one key, as WebDataset does."""
    wanted = {e.lstrip(".") for e in IMAGE_EXTENSIONS} | {"cls"}
    current, members = None, {}
    _check_tar_end(path)
    try:
        with tarfile.open(path) as tar:
            for m in tar:
                match = _WDS_NAME.match(m.name)
                if not m.isfile() or not match:
                    continue
                sample_key, ext = match.group(1), match.group(2).lower()
                if sample_key != current and current is not None:
                    yield current, members
                    members = {}
                current = sample_key
                if ext in wanted:
                    # Bytes are read in memory only: nothing is ever extracted to disk.
                    members[ext] = tar.extractfile(m).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BadInput(f"{path}: not a readable tar file ({_first_line(exc)}); re-create it") from None
    if current is not None:
        yield current, members


def _check_tar_end(path: Path) -> None:
    # tarfile stops quietly when a cut falls between members; a whole tar ends in two zero blocks.
    with path.open("rb") as fh:
        head = fh.read(2)
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(size - 1024, 0))
        tail = fh.read()
    compressed = head in (b"\x1f\x8b", b"BZ", b"\xfd7")  # gzip, bzip2, xz: tarfile checks those itself
    if not compressed and (size < 1024 or size % 512 or tail.strip(b"\0")):
        raise BadInput(f"{path}: not a complete tar file (no end-of-archive blocks: cut short?); re-create it")


def _sidecar_names(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    try:
        names = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: not a JSON list of class names ({_first_line(exc)}); fix or delete it") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise BadInput(f"{path}: must be a JSON list of distinct class names; fix or delete it")
    return names


def _sklearn_items(spec: str, key: str) -> tuple[list[_Item], list[str], list[str]]:
    if spec not in BUILTINS:
        raise BadInput(f"{key}: unknown built-in data set {spec!r}; available: {', '.join(BUILTINS)}")
    from sklearn.datasets import load_digits

    digits = load_digits()  # ships inside scikit-learn: no download
    pixels = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    items = [
        _Item(f"digits-{i:05d}", int(t), f"{spec} image {i}", partial(Image.fromarray, pixels[i])) for i, t in enumerate(digits.target)
    ]
    return items, [str(i) for i in range(10)], ["pixel values 0..16 scaled to 0..255"]


# --- decoding and converting -----------------------------------------------------------------


def _load(items: list[_Item], size, mode, notes: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    # Pass 1 reads headers only, to pick the target and refuse unsupported modes before decoding.
    headers = []
    for it in items:
        with _decode(it, full=False) as im:
            _check_mode(im.mode, it.where)
            headers.append(((im.height, im.width), im.mode))
    h, w = size or Counter(s for s, _ in headers).most_common(1)[0][0]
    target = mode or Counter("L" if m in _GRAY_MODES else "RGB" for _, m in headers).most_common(1)[0][0]

    out = np.empty((len(items), h, w, CHANNELS[target]), dtype=np.uint8)
    converted, resized = Counter(), Counter()
    for i, it in enumerate(items):
        with _decode(it, full=True) as im:
            if im.mode != target:
                converted[im.mode] += 1
            im = _to_mode(im, target)
            if (im.height, im.width) != (h, w):
                resized[(im.height, im.width)] += 1
                im = im.resize((w, h), RESAMPLE)
            out[i] = np.asarray(im).reshape(h, w, -1)
    notes = list(notes)
    notes += [f"{_count(n)} converted from {m} to {target}" for m, n in sorted(converted.items())]
    notes += [f"{_count(n)} resized from {sh}x{sw} to {h}x{w} (height x width, {RESAMPLE_NAME})" for (sh, sw), n in sorted(resized.items())]
    return out, np.array([it.label for it in items], dtype=np.int64), notes


def _decode(item: _Item, full: bool) -> Image.Image:
    try:
        im = item.open()
        if full:
            im.load()
        return im
    except Exception as exc:  # Pillow raises many types on corrupt data; all mean "this file"
        raise BadInput(f"{item.where}: cannot decode image ({_first_line(exc)}); replace or remove it") from None


def _check_mode(mode: str, where: str) -> None:
    if mode not in _CONVERTIBLE:
        raise BadInput(f"{where}: image mode {mode!r} is not supported (no lossless meaning as 8-bit); convert it to 8-bit L or RGB first")


def _to_mode(im: Image.Image, target: str) -> Image.Image:
    if im.mode.startswith("I;16"):
        # Pillow's own I;16 -> L clips at 255; scale the 16-bit range instead.
        wide = np.asarray(im).astype(np.uint32)
        im = Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8))
    if im.mode == target:
        return im
    if target == "L" and im.mode not in _GRAY_MODES:
        im = im.convert("RGB")  # Pillow converts to L from RGB, not from every colour mode
    return im.convert(target)


def _open_bytes(blob: bytes) -> Image.Image:
    return Image.open(io.BytesIO(blob))


def _count(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
