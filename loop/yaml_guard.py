"""Reading YAML that may be hostile: bounded in size, in alias expansion and in depth.

PyYAML's composer shares one node among all the aliases of an anchor, so a "billion laughs"
document (nine lists of nine aliases to the previous list) parses in microseconds into a small
graph that only explodes later, when something walks it as a tree (validation, storing the
config as JSON). So the graph is measured before anything is constructed: its size as a tree
(every alias counted as a full copy) must stay under `MAX_YAML_NODES`, and a recursive alias is
refused. Documents above `MAX_CONFIG_BYTES` are refused before they are parsed.
"""

from __future__ import annotations

from typing import Any

import yaml

from alloop.loop.errors import ConfigError

#: largest config file read, in bytes (the shipped configs are under 2 kB)
MAX_CONFIG_BYTES = 1_000_000
#: largest config tree, in YAML nodes, with every alias expanded
MAX_YAML_NODES = 100_000


def load_bounded_yaml(text: str, source: str) -> Any:
    """`yaml.safe_load(text)`, refusing (ConfigError naming `source`) a document longer than
    `MAX_CONFIG_BYTES`, one whose aliases expand past `MAX_YAML_NODES` nodes, a recursive alias,
    and nesting deeper than Python's recursion allows. YAML syntax errors propagate as
    `yaml.YAMLError`."""
    size = len(text.encode("utf-8"))
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{source}: larger than {MAX_CONFIG_BYTES:,} bytes, the limit for a config"
        )
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_expanded_size(node, source)
            return loader.construct_document(node)
        except RecursionError:
            raise ConfigError(f"{source}: the YAML is nested too deeply") from None
    finally:
        loader.dispose()


def _check_expanded_size(root: yaml.Node, source: str) -> None:
    """Count the nodes of `root` as a tree (shared nodes counted at every use), iteratively."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > MAX_YAML_NODES:
                raise ConfigError(
                    f"{source}: the YAML expands to more than {MAX_YAML_NODES:,} nodes "
                    "(aliases repeat an anchor's content); refused before expanding it"
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ConfigError(f"{source}: a YAML alias refers to itself (recursive anchor)")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [x for pair in node.value for x in pair]
    return []
