"""Reshape targets as constants: a graph that computes them at run time, rewritten to give the same result.

PyTorch's export of BERT attention computes each ``view(batch, seq, heads, head_dim)`` from the
input's shape at run time (``Shape``, ``Gather``, ``Unsqueeze``, ``Concat``): about a hundred
small nodes per pass, each with onnxruntime's fixed cost per node. ONNX ``Reshape`` copies a
dimension given as 0 from its input and infers one given as -1, so where symbolic shape
inference (onnxruntime's own tool) shows that every output dimension is a number, the input's
dimension at the same place, or the one left to infer, the target is written as a constant and
the nodes that computed it are dropped. Nothing else changes: the rewritten graph gives the same
numbers to the bit, and :func:`same_outputs` checks that on inputs of several lengths before a
caller keeps it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _shapes(model) -> dict[str, list[Any]]:
    """Each tensor's dimensions after symbolic inference: an int, a symbol (str), or None."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    shapes = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims: list[Any] = []
        for d in info.type.tensor_type.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None)
        shapes[info.name] = dims
    return shapes


def reshape_target(source: list[Any], result: list[Any]) -> list[int] | None:
    """The constant ``Reshape`` target that turns ``source`` dimensions into ``result``, or None.

    >>> reshape_target(["batch", "seq", 384], ["batch", "seq", 12, 32])
    [0, 0, 12, 32]
    >>> reshape_target(["batch", 12, "seq", 32], ["batch", "seq", 384])
    [0, -1, 384]
    >>> reshape_target(["batch", "seq"], ["seq", "batch"]) is None
    True
    """
    if any(d is None or d == 0 for d in [*source, *result]):
        return None  # unknown, or a dimension of size zero (which a 0 in the target would not give)
    target = []
    for at, dim in enumerate(result):
        if isinstance(dim, int):
            target.append(dim)
        elif at < len(source) and source[at] == dim:
            target.append(0)
        else:
            target.append(-1)
    return target if target.count(-1) <= 1 else None


def constant_reshapes(model) -> int:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place; the number of targets made constant."""
    from onnx import numpy_helper

    constants = {i.name for i in model.graph.initializer}
    shapes = _shapes(model)
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[1] in constants:
            continue
        if any(a.name == "allowzero" and a.i for a in node.attribute):
            continue  # there 0 means a dimension of size zero
        target = reshape_target(shapes.get(node.input[0], [None]), shapes.get(node.output[0], [None]))
        if target is None:
            continue
        name = f"{node.output[0]}/constant_target"
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(target, dtype=np.int64), name))
        node.input[1] = name
        changed += 1
    _drop_unused(model)
    return changed


def _drop_unused(model) -> None:
    """Remove nodes none of whose outputs is read (repeatedly: a chain goes from its end)."""
    graph = model.graph
    while True:
        read = {o.name for o in graph.output}
        for node in graph.node:
            read.update(node.input)
        unused = [node for node in graph.node if not any(o in read for o in node.output)]
        if not unused:
            return
        for node in unused:
            graph.node.remove(node)


def same_outputs(a: Path, b: Path, ort: Any, *, lengths=(1, 2, 7, 33, 130, 512), seed: int = 0) -> bool:
    """True if the models at ``a`` and ``b`` give bit-identical outputs on random token ids.

    One text per input and two of different lengths padded together, with the attention mask.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    try:
        sessions = [ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for p in (a, b)]
    except Exception:  # a rewrite onnxruntime refuses is not the same graph
        return False
    rng = np.random.default_rng(seed)
    feeds = []
    for n in lengths:
        ids = rng.integers(5, 1000, size=(1, n)).astype(np.int64)
        feeds.append({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    ids = rng.integers(5, 1000, size=(2, 9)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 4:] = 0
    feeds.append({"input_ids": ids, "attention_mask": mask})
    for feed in feeds:
        try:
            one, two = (s.run(None, feed) for s in sessions)
        except Exception:  # nor one that fails on some input
            return False
        if len(one) != len(two) or any(x.shape != y.shape or x.tobytes() != y.tobytes() for x, y in zip(one, two)):
            return False
    return True
