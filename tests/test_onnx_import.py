"""ONNX import: models built with onnx.helper, counted by hand."""
from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dse.errors import SpecError
from dse.workloads import WorkloadImportWarning, load_workload


def _save(tmp_path, nodes, inputs, outputs, inits=(), name="model"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _init(name, *shape):
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def _mlp_onnx(tmp_path, widths):
    nodes, inits, x = [], [], "x"
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        inits += [_init(f"w{i}", a, b), _init(f"b{i}", b)]
        nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"h{i}"], name=f"fc{i}"),
                  helper.make_node("Add", [f"h{i}", f"b{i}"], [f"z{i}"], name=f"bias{i}"),
                  helper.make_node("Relu", [f"z{i}"], [f"y{i}"], name=f"relu{i}")]
        x = f"y{i}"
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", widths[0]])
    out = helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", widths[-1]])
    return _save(tmp_path, nodes, [inp], [out], inits, name="mlp")


def test_mlp_import_has_the_mlp_generators_macs(tmp_path):
    path = _mlp_onnx(tmp_path, [256, 512, 512, 128])
    wl = load_workload(str(path), batch=32)
    assert wl.macs == load_workload("mlp:widths=256-512-512-128,batch=32").macs
    assert wl.macs == 32 * (256 * 512 + 512 * 512 + 512 * 128)  # and by hand
    assert wl.samples == 32 and wl.name == "mlp"
    fc = {op.name: op for op in wl.ops if op.kind == "matmul"}
    assert all(op.b_role == "weights" and op.precision == "fp32" for op in fc.values())
    assert dict((op.name, op.deps) for op in wl.ops)["fc1"] == ("relu0",)


def test_symbolic_batch_defaults_to_one(tmp_path):
    wl = load_workload(str(_mlp_onnx(tmp_path, [64, 32])))
    assert wl.samples == 1 and wl.macs == 64 * 32


def test_conv_net_matches_a_hand_count(tmp_path):
    inits = [_init("w1", 16, 3, 3, 3), _init("w2", 32, 16, 3, 3), _init("fcw", 10, 32),
             _init("fcb", 10)]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2],
                         name="conv2"),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fcw", "fcb"], ["y"], transB=1, name="fc"),
    ]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 32, 32])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 10])], inits, "convnet")
    wl = load_workload(str(path))
    # conv1: 32x32 outputs x 16 filters x (3 channels x 3x3); pool -> 16x16;
    # conv2 (stride 2): 8x8 outputs x 32 filters x (16 x 3x3); fc: 32 -> 10. Batch 2.
    by_hand = 2 * (32 * 32 * 16 * 3 * 9 + 8 * 8 * 32 * 16 * 9 + 32 * 10)
    assert wl.macs == by_hand
    ops = {op.name: op for op in wl.ops}
    assert ops["conv2"].out_hw == (8, 8) and ops["conv2"].deps[0].startswith("maxpool")
    assert ops["fc"].deps[0].startswith("globalaveragepool")  # through the free Flatten
    pool = next(op for op in wl.ops if op.tag == "MaxPool")
    assert pool.elements == 2 * 16 * 16 * 16 and pool.inputs == 4


def test_attention_matmuls_have_both_operands_activations(tmp_path):
    B, H, S, D = 2, 4, 16, 8
    inits = [_init("wq", H * D, H * D), _init("wk", H * D, H * D)]
    shape = numpy_helper.from_array(np.array([B, S, H, D], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q0"], name="q_proj"),
        helper.make_node("MatMul", ["x", "wk"], ["k0"], name="k_proj"),
        helper.make_node("Reshape", ["q0", "shape"], ["q1"]),
        helper.make_node("Reshape", ["k0", "shape"], ["k1"]),
        helper.make_node("Transpose", ["q1"], ["q"], perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["k1"], ["kt"], perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"], name="scores"),
        helper.make_node("Softmax", ["s"], ["p"], axis=-1),
    ]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [B, S, H * D])],
                 [helper.make_tensor_value_info("p", TensorProto.FLOAT, None)], [*inits, shape], "attn")
    ops = {op.name: op for op in load_workload(str(path)).ops}
    s = ops["scores"]
    assert (s.a_role, s.b_role) == ("activations", "activations")
    assert (s.count, s.m, s.k, s.n) == (B * H, S, D, S)
    assert set(s.deps) == {"q_proj", "k_proj"}
    assert ops["q_proj"].m == B * S and ops["q_proj"].count == 1  # batch folded into rows


def test_unsupported_nodes_warn_with_types_and_fraction(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("CumSum", ["a", "axis"], ["b"]),
             helper.make_node("Relu", ["b"], ["c"]),
             helper.make_node("Hardmax", ["c"], ["y"])]
    axis = numpy_helper.from_array(np.array(0, dtype=np.int64), "axis")
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])], [axis], "odd")
    with pytest.warns(WorkloadImportWarning) as rec:
        wl = load_workload(str(path))
    msg = str(rec[0].message)
    assert "CumSum" in msg and "Hardmax" in msg and "2 of 4" in msg and "50.0%" in msg
    relus = [op for op in wl.ops]
    assert len(relus) == 2 and relus[1].deps == (relus[0].name,)  # deps pass through skipped nodes


def test_supported_model_does_not_warn(tmp_path):
    path = _mlp_onnx(tmp_path, [16, 16])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_workload(str(path))


def test_embedding_gather_is_a_random_read_of_rows(tmp_path):
    table = _init("table", 1000, 64)
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], name="embed")]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("ids", TensorProto.INT64, [8, 16])],
                 [helper.make_tensor_value_info("e", TensorProto.FLOAT, [8, 16, 64])], [table], "emb")
    (op,) = load_workload(str(path)).ops
    assert op.pattern == "random" and op.in_role == "embeddings" and op.access_bytes == 64 * 4
    assert op.elements == 8 * 16 * 64


def test_corrupt_file_is_one_line_spec_error(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07this is not a protobuf\xff\xfe" * 10)
    with pytest.raises(SpecError) as e:
        load_workload(str(path))
    assert e.value.where == str(path) and "\n" not in str(e.value)


def test_truncated_model_is_a_spec_error(tmp_path):
    good = _mlp_onnx(tmp_path, [64, 64])
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(SpecError):
        load_workload(str(bad))


def test_missing_onnx_file(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load_workload(str(tmp_path / "none.onnx"))


def test_model_without_its_external_weight_file_loads_from_the_graph(tmp_path):
    """A model shared without its .data file: shapes from the graph, weights from initializer dims."""
    inits = [_init("w1", 64, 3, 3, 3), _init("w2", 128, 64, 3, 3), _init("fcw", 1000, 128)]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fcw"], ["y"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(nodes, "ext", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1000])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.onnx.data", size_threshold=0)
    data = tmp_path / "ext.onnx.data"
    assert data.stat().st_size == 4 * (64 * 27 + 128 * 64 * 9 + 1000 * 128)  # the weights went there
    data.unlink()
    with pytest.raises(Exception):  # what onnx itself does without the file
        onnx.load(str(path))
    with pytest.warns(WorkloadImportWarning) as rec:
        wl = load_workload(str(path))
    absent = [str(w.message) for w in rec if "weight data absent" in str(w.message)]
    assert len(absent) == 1 and "ext.onnx.data" in absent[0]
    # conv1 (stride 2): 32x32 outputs x 64 filters x (3 x 3x3); conv2: 32x32 x 128 x (64 x 3x3);
    # fc: 128 -> 1000
    assert wl.macs == 32 * 32 * 64 * 27 + 32 * 32 * 128 * 64 * 9 + 128 * 1000
    weights = sum(t["bytes"] for op in wl.ops if op.kind != "vector"
                  for t in op.tensor_bytes().values() if t["role"] == "weights")
    assert weights == 4 * (64 * 27 + 128 * 64 * 9 + 1000 * 128)  # fp32, from the initializers' dims


def test_model_with_its_external_weight_file_loads_without_warning(tmp_path):
    path = tmp_path / "mlp_ext.onnx"
    model = onnx.load(str(_mlp_onnx(tmp_path, [64, 32])))
    onnx.save(model, str(path), save_as_external_data=True, location="mlp_ext.data", size_threshold=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_workload(str(path)).macs == 64 * 32
