"""Image I/O in one import: sources (`read_images` -> `ImageSet`) and sinks (`ShardSink`).

Readers live in `image_sources.py`, writers in `image_sinks.py`; see their docstrings for the
formats and what counts as a shard.
"""

from synthaug.io.image_sinks import (
    SINKS,
    HFParquetSink,
    ImageFolderSink,
    ImageShardInfo,
    ShardSink,
    WebDatasetSink,
    check_label_name,
    open_image_sink,
    png_bytes,
)
from synthaug.io.image_sources import BUILTINS, IMAGE_EXTENSIONS, LABEL_NAMES_FILE, ImageSet, read_images

__all__ = [
    "BUILTINS",
    "IMAGE_EXTENSIONS",
    "LABEL_NAMES_FILE",
    "SINKS",
    "HFParquetSink",
    "ImageFolderSink",
    "ImageSet",
    "ImageShardInfo",
    "ShardSink",
    "WebDatasetSink",
    "check_label_name",
    "open_image_sink",
    "png_bytes",
    "read_images",
]
