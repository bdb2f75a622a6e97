"""Reading YAML safely: duplicate keys refused, alias expansion bounded, errors on one line.

PyYAML's safe loader keeps the last of two equal keys without a word, and expands aliases by
reference: a 1.5 KB "billion laughs" file becomes a structure whose printing or validation
takes gigabytes. Here a document may hold at most MAX_ALIASES aliases and MAX_NODES nodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from synthaug.errors import BadInput

MAX_ALIASES = 100
MAX_NODES = 100_000
MAX_BYTES = 10 * 2**20


class _Loader(yaml.SafeLoader):
    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.aliases = 0
        self.nodes = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases (*name); write the values out")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise yaml.YAMLError(f"more than {MAX_NODES} nodes")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.YAMLError(f"duplicate key '{key}' at line {mark.line + 1}; keep one of them")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _expanded_size(data: Any, limit: int = MAX_NODES) -> int:
    """Count values as if aliases were copied out, stopping at `limit`."""
    count, stack = 0, [data]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def load_yaml_text(text: str, where: str) -> Any:
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadInput(f"{where}: invalid YAML{at} ({problem}); fix the file") from None
    if _expanded_size(data) > MAX_NODES:
        raise BadInput(f"{where}: aliases expand to more than {MAX_NODES} values; write the values out")
    return data


def read_yaml(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise BadInput(f"{path}: {size} bytes is too large for a pipeline or preset file (limit {MAX_BYTES})")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text; save the YAML as UTF-8") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror or exc}); check the path") from None
    return load_yaml_text(text, str(path))
