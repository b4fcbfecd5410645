"""A TensorFlow graph, grouped by name scope: hundreds of ops become a dozen readable boxes.

The training step's graph (`engine.training.train_step` under `tf.function`) has ~200 ops for a
three-layer MLP. Its names say where each op came from, because every layer and every part of
the step opens a name scope: 'dense_1/MatMul' (the forward pass of layer dense_1), 'loss/Exp',
'update/AssignSubVariableOp', 'metrics/ArgMax'. TensorFlow names the backward op of op X
'gradient_tape/X/...', so 'gradient_tape/dense_1/...' is backpropagation through dense_1; the
ops under 'gradients/' are the seed dL/dL = 1, the loss's own written-out derivative p - y, and
the AddN ops that sum a tensor's gradients from its several consumers where branches meet (the
input of a skip connection gets one gradient through the block and one around it).
Grouping by the first name component (the second one, for backward ops) gives one box per
layer forward, one per layer backward, the loss, the update and the metrics.
"""

import collections
import dataclasses
from typing import Dict, List, Mapping, Optional, Set, Tuple

import tensorflow as tf

_IGNORED_OPS = ("Const", "NoOp")  # constants and control-flow anchors carry no data between parts
_PLUMBING_OPS = {"Placeholder", "ReadVariableOp", "Identity", "IdentityN", "Shape", "StridedSlice", "Reshape",
                 "BroadcastGradientArgs", "ZerosLike", "Cast", "Size", "Rank", "Range"}


def group_of(op_name: str) -> str:
    """'dense_1/MatMul' -> 'dense_1'; 'gradient_tape/dense_1/MatMul/MatMul' -> 'gradients/dense_1';
    'gradients/truediv' (the loss's own derivative) -> 'gradients/loss'; 'gradients/AddN_1' ->
    'gradients/sum of branches'."""
    parts = op_name.split("/")
    if parts[0] == "gradient_tape" and len(parts) > 2:
        return f"gradients/{parts[1]}"
    if parts[0] == "gradients" and parts[1].startswith("AddN"):
        return "gradients/sum of branches"
    if parts[0] in ("gradient_tape", "gradients"):
        return "gradients/loss"
    return parts[0]


@dataclasses.dataclass
class GroupedGraph:
    """Boxes (group name -> the op types in it) and the edges between them.

    `flows` are data edges (a tensor made in one group and used in another); `writes` are
    assignments to a variable owned by another group (the update writing a layer's kernel).
    """

    ops: Dict[str, List[str]]
    flows: Set[Tuple[str, str]]
    writes: Set[Tuple[str, str]]


def group_graph(graph_def: tf.compat.v1.GraphDef) -> GroupedGraph:
    """Groups `graph_def`'s ops with `group_of`; a function's returned Identity is left out."""
    kept = {node.name: node for node in graph_def.node
            if node.op not in _IGNORED_OPS and not (node.op == "Identity" and "/" not in node.name)}
    ops, flows, writes = collections.defaultdict(list), set(), set()
    for node in kept.values():
        group = group_of(node.name)
        ops[group].append(node.op)
        for source in node.input:
            source = source.split(":")[0]
            if source.startswith("^") or source not in kept or group_of(source) == group:
                continue
            if node.op.startswith("Assign") and kept[source].op == "Placeholder":  # a captured variable
                writes.add((group, group_of(source)))
            else:
                flows.add((group_of(source), group))
    return GroupedGraph(dict(ops), flows, writes)


def to_dot(grouped: GroupedGraph, descriptions: Optional[Mapping[str, str]] = None, title: str = "") -> str:
    """Graphviz DOT text: the forward pass and loss, the backward pass, then update and metrics.

    Each box shows its group name, `descriptions[name]` when given (e.g. 'Dense(128, relu)'),
    its op count and its main op types (shape bookkeeping left out).
    """
    descriptions = descriptions or {}

    def box(name: str) -> str:
        count, kinds = len(grouped.ops[name]), set(grouped.ops[name])
        types = sorted(kinds - _PLUMBING_OPS) or sorted(kinds)  # only plumbing (Flatten's Reshape): show it
        ops = f"{count} op{'s' * (count > 1)}: {', '.join(types[:5])}"
        label = "\\n".join(filter(None, [name, descriptions.get(name, ""), ops]))
        color = "#fde0c5" if name.startswith("gradients/") else "#d7e8fa" if name in descriptions else "#e8e8e8"
        return f'    "{name}" [label="{label}", fillcolor="{color}"];'

    backward = [name for name in grouped.ops if name.startswith("gradients/")]
    outside = [name for name in grouped.ops if name in ("update", "metrics")]
    forward = [name for name in grouped.ops if name not in backward + outside]
    lines = ["digraph training_step {",
             f'  label="{title}\\ndashed: the update assigns new values to the layers\' variables"; labelloc=t;',
             '  rankdir=TB; newrank=true;',
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
             '  subgraph cluster_forward {\n    label="forward pass and loss";']
    lines += [box(name) for name in forward] + ["  }"]
    lines += ['  subgraph cluster_backward {\n    label="backward pass: gradients";']
    lines += [box(name) for name in backward] + ["  }"] + [box(name) for name in outside]
    lines += [f'  "{a}" -> "{b}";' for a, b in sorted(grouped.flows)]
    lines += [f'  "{a}" -> "{b}" [style=dashed, color="#c0392b", constraint=false];' for a, b in sorted(grouped.writes)]
    return "\n".join(lines + ["}"]) + "\n"
