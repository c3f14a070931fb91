"""A bounded, strict YAML reader for configs and recipes: safe types only, duplicate keys refused, the file's
size and its alias expansion capped (a 557-byte alias bomb names a billion nodes), and every problem one line
with the file, line and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from prep.errors import PrepError
from prep.paths import read_capped, refuse_special

MAX_BYTES = 1 << 20  # a mixture config or recipe is a few KB
MAX_NODES = 100_000  # values after expanding aliases; the shipped configs have a few hundred


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` overrides are YAML's own, not duplicates
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: PyYAML reports it below
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first}): remove one", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: Node, limit: int) -> int:
    """Nodes the document has once its aliases are expanded, stopping past `limit`; refuses recursive aliases."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            on_path.discard(id(node))
            sizes[id(node)] = min(limit + 1, 1 + sum(sizes[id(c)] for c in children))
            continue
        if id(node) in sizes:
            continue
        if id(node) in on_path:
            raise PrepError(f"line {node.start_mark.line + 1}: an alias refers to itself")
        on_path.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def load_yaml(path: Path) -> Any:
    """The YAML document in `path`, as plain dicts, lists and scalars. Raises PrepError with one line."""
    refuse_special(path, "YAML file")
    data = read_capped(path, MAX_BYTES, f"{MAX_BYTES >> 10} KiB (a config is a few KB)", "is this the right file?")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise PrepError(f"{path}:{line}: not UTF-8 (byte 0x{data[e.start]:02x}); save the file as UTF-8") from e
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        if _expanded_size(root, MAX_NODES) > MAX_NODES:
            raise PrepError(f"more than {MAX_NODES} values once its aliases are expanded (an alias bomb?)")
        return loader.construct_document(root)
    except PrepError as e:
        raise PrepError(f"{path}: {e}") from e
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise PrepError(f"{where}: invalid YAML: {what}") from e
    except yaml.YAMLError as e:
        raise PrepError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from e
    except RecursionError as e:
        raise PrepError(f"{path}: nested too deeply to be a config") from e
    finally:
        loader.dispose()
