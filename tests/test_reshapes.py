"""Reshape targets made constant: fewer nodes, the same outputs to the bit, on a small BERT exported as the model is."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from embeddings.model.reshapes import constant_reshapes, same_outputs


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer BERT with random weights, exported like the shipped model (eager attention, dynamic axes)."""
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128
    )
    config._attn_implementation = "eager"
    model = BertModel(config, add_pooling_layer=False).eval()

    class Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    path = tmp_path_factory.mktemp("tiny") / "model.onnx"
    ids = torch.tensor([[1, 5, 9, 2], [1, 7, 2, 0]])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Hidden(model),
            (ids, (ids != 0).long()),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["hidden"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
            opset_version=17,
            dynamo=False,
        )
    return path


def test_constant_targets_drop_nodes_and_keep_the_outputs(tiny_bert, tmp_path):
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(tiny_bert))
    before = len(graph.graph.node)
    changed = constant_reshapes(graph)
    onnx.checker.check_model(graph)
    assert changed >= 4 * 2  # query, key, value and context of each layer
    assert len(graph.graph.node) < before
    targets = {i.name: onnx.numpy_helper.to_array(i) for i in graph.graph.initializer}
    assert any(np.array_equal(t, [0, 0, 4, 16]) for t in targets.values())  # heads split off in place
    rewritten = tmp_path / "rewritten.onnx"
    onnx.save(graph, str(rewritten))
    assert same_outputs(tiny_bert, rewritten, ort, lengths=(1, 3, 17, 64))


@pytest.mark.parametrize("only_first", [False, True])
def test_a_wrong_target_is_caught_by_the_check(tiny_bert, tmp_path, only_first):
    """``same_outputs`` is what stands between a bad rewrite and the index: it must see one,
    whether the graph still runs (every head split the wrong way) or does not (one)."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(tiny_bert))
    constant_reshapes(graph)
    for init in graph.graph.initializer:
        if init.name.endswith("/constant_target") and list(onnx.numpy_helper.to_array(init)) == [0, 0, 4, 16]:
            init.CopyFrom(onnx.numpy_helper.from_array(np.asarray([0, 0, 16, 4], np.int64), init.name))
            if only_first:
                break
    wrong = tmp_path / "wrong.onnx"
    onnx.save(graph, str(wrong))
    assert not same_outputs(tiny_bert, wrong, ort, lengths=(3, 17))
