"""One walk over an ONNX graph and its subgraphs: the If branches and Loop/Scan bodies a node holds in its
attributes (type GRAPH, or GRAPHS), at any depth. Stages that must see inside bodies (op inventories, compute
shares, symbolic axis names) enter them all the same way through this module rather than each its own.

Two orders, each what its callers rely on: `walk_graphs` gives whole graphs, each before the graphs inside it
(a graph's nodes all come before its bodies' nodes); `walk_nodes` gives nodes as a reader meets them, each node
followed by the nodes of its bodies. `subgraph_reads` names what the bodies of some nodes read: the tensors a stage
that drops or renames one must keep, or rename inside them too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import onnx


@dataclass(frozen=True)
class GraphScope:
    """A graph met by `walk_graphs`: the node and attribute holding it (None and "" for the top graph), and the
    scope around it, whose names the graph may read (ONNX's outer scope)."""

    graph: onnx.GraphProto
    owner: onnx.NodeProto | None = None
    attribute: str = ""
    parent: GraphScope | None = None

    @property
    def depth(self) -> int:
        """0 for the top graph, 1 for a body of one of its nodes, and so on."""
        return 0 if self.parent is None else self.parent.depth + 1

    def enclosing(self) -> Iterator[GraphScope]:
        """This scope, then each around it out to the top graph."""
        scope: GraphScope | None = self
        while scope is not None:
            yield scope
            scope = scope.parent


def node_subgraphs(node: onnx.NodeProto) -> Iterator[tuple[str, onnx.GraphProto]]:
    """The graphs `node` holds, with the attribute holding each ("then_branch", "body"), in attribute order."""
    for attribute in node.attribute:
        for graph in [attribute.g, *attribute.graphs] if attribute.HasField("g") else attribute.graphs:
            yield attribute.name, graph


def walk_graphs(graph: onnx.GraphProto, scope: GraphScope | None = None) -> Iterator[GraphScope]:
    """`graph` and every subgraph in it, each before the ones it holds, depth first in node order."""
    here = GraphScope(graph) if scope is None else scope
    yield here
    for node in graph.node:
        for attribute, body in node_subgraphs(node):
            yield from walk_graphs(body, GraphScope(body, node, attribute, here))


def walk_nodes(graph: onnx.GraphProto) -> Iterator[tuple[onnx.NodeProto, onnx.GraphProto]]:
    """Every node of `graph` and its subgraphs, each once with the graph it sits in: a node, then the nodes of
    its subgraphs (depth first), then the next node."""
    for node in graph.node:
        yield node, graph
        for _, body in node_subgraphs(node):
            yield from walk_nodes(body)


def subgraph_reads(nodes: Iterable[onnx.NodeProto]) -> set[str]:
    """Every name the nodes inside the subgraphs of `nodes` read, at any depth: the outer-scope names among them,
    which a stage that drops or renames a tensor must see (names a body makes itself too: more is safe there)."""
    return {
        name
        for node in nodes
        for _, body in node_subgraphs(node)
        for inner, _ in walk_nodes(body)
        for name in inner.input
    }
