"""Import an ONNX model as a workload DAG.

Conv, Gemm and MatMul (also their integer/QLinear forms) become matmul/conv2d
ops; element-wise, normalisation, softmax and pooling nodes become vector ops;
layout nodes (Reshape, Transpose, Concat, Cast...) are free and pass their
dependencies through. Tensors stored as initializers or Constant nodes are
weights. Anything else is skipped with a WorkloadImportWarning naming the op
types and the fraction of nodes skipped. Symbolic dimensions (e.g. the batch
dimension ``N``) are set to ``batch`` (default 1) before shape inference.
Weights stored in external data files are not needed: a model whose .data file
is absent loads from its graph alone, with one warning.
"""
from __future__ import annotations

import warnings
from collections import Counter
from math import ceil, prod
from pathlib import Path

import onnx
from onnx import TensorProto, helper, shape_inference
from onnx.external_data_helper import load_external_data_for_model

from dse.errors import SpecError
from dse.workloads.dag import topological_order
from dse.workloads.ops import PRECISION_BYTES, Op, Workload

_PRECISION = {
    TensorProto.FLOAT: "fp32", TensorProto.DOUBLE: "fp32", TensorProto.FLOAT16: "fp16",
    TensorProto.BFLOAT16: "bf16", TensorProto.INT8: "int8", TensorProto.UINT8: "int8",
}
for _name, _prec in (("FLOAT8E4M3FN", "fp8"), ("FLOAT8E4M3FNUZ", "fp8"), ("FLOAT8E5M2", "fp8"),
                     ("FLOAT8E5M2FNUZ", "fp8"), ("INT4", "int4"), ("UINT4", "int4")):
    if hasattr(TensorProto, _name):
        _PRECISION[getattr(TensorProto, _name)] = _prec

#: (input index of the activation/A operand, of the weight/B operand) per GEMM-like op type.
_GEMM_INPUTS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3), "Gemm": (0, 1)}
_CONV_INPUTS = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3)}

#: Vector ops per output element of element-wise and normalisation nodes.
_VECTOR_OPS: dict[str, float] = {
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Max": 1, "Min": 1, "Sum": 1, "Mean": 2,
    "Neg": 1, "Abs": 1, "Reciprocal": 1, "Relu": 1, "LeakyRelu": 2, "PRelu": 2, "Clip": 2,
    "Sigmoid": 4, "Tanh": 4, "HardSigmoid": 3, "HardSwish": 4, "Softplus": 4, "Elu": 4,
    "Gelu": 8, "Erf": 8, "Exp": 4, "Log": 4, "Sqrt": 4, "Pow": 4, "Where": 1, "Equal": 1,
    "Less": 1, "Greater": 1, "Not": 1, "And": 1, "Or": 1,
    "Softmax": 6, "LogSoftmax": 7, "LayerNormalization": 8, "BatchNormalization": 2,
    "InstanceNormalization": 8, "GroupNormalization": 8, "Resize": 4, "Upsample": 4,
}
#: Nodes reducing a window or axis: ops per output = input elements / output elements.
_REDUCE = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean",
           "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2", "ReduceProd", "ReduceSumSquare"}
#: Layout and bookkeeping nodes: no arithmetic, fused away by compilers.
_FREE = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Shape", "Size",
         "Constant", "ConstantOfShape", "Concat", "Split", "Slice", "Cast", "CastLike", "Expand",
         "Dropout", "Gather", "Range", "Pad", "QuantizeLinear", "DequantizeLinear", "Tile"}


def _fix_symbolic_dims(model: onnx.ModelProto, dims: dict[str, int], default: int) -> None:
    """Replace symbolic (or unknown) dimensions of the graph inputs with concrete sizes."""
    for vi in model.graph.input:
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            continue
        for d in t.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            value = dims.get(d.dim_param, default)
            d.Clear()
            d.dim_value = value


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _external_tensors(model: onnx.ModelProto) -> list[TensorProto]:
    return [t for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL]


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Attach the weight values kept in files beside the model, when they are there.

    Only shapes matter to dse (weight bytes come from the initializers' dims), so a
    model shared without its weight files still loads: one warning says so.
    """
    from dse.workloads import WorkloadImportWarning

    external = _external_tensors(model)
    if not external:
        return
    try:
        load_external_data_for_model(model, str(path.parent))
    except Exception as e:  # missing or truncated .data file
        locations = sorted({kv.value for t in external for kv in t.external_data if kv.key == "location"})
        missing = [loc for loc in locations if not (path.parent / loc).is_file()]
        why = f"{', '.join(missing)} not found" if missing else _first_line(e)
        warnings.warn(WorkloadImportWarning(
            f"{path}: weight data absent ({why}); shapes come from the graph and weight bytes "
            f"from the {len(external)} initializers' dims"), stacklevel=4)


def _read(path: Path, dims: dict[str, int], batch: int) -> onnx.ModelProto:
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf DecodeError, OSError, ...
        raise SpecError(f"cannot read ONNX model: {_first_line(e)}", where=str(path)) from None
    if not model.graph.node:
        raise SpecError("ONNX model has no graph nodes (corrupt or empty file?)", where=str(path))
    _load_external_data(model, path)
    _fix_symbolic_dims(model, dims, batch)
    try:
        return shape_inference.infer_shapes(model, data_prop=True)
    except Exception as e:
        raise SpecError(f"ONNX shape inference failed: {_first_line(e)}", where=str(path)) from None


class _Graph:
    """Shapes, element types and roles of an ONNX graph's tensors."""

    def __init__(self, model: onnx.ModelProto):
        g = model.graph
        self.shapes: dict[str, list[int] | None] = {}
        self.types: dict[str, int] = {}
        for vi in [*g.input, *g.value_info, *g.output]:
            t = vi.type.tensor_type
            self.types[vi.name] = t.elem_type
            if t.HasField("shape"):
                dims = [d.dim_value if d.HasField("dim_value") else 0 for d in t.shape.dim]
                self.shapes[vi.name] = dims if all(d > 0 for d in dims) or not dims else None
        self.constants: set[str] = set()
        for init in g.initializer:
            self.shapes[init.name] = list(init.dims)
            self.types[init.name] = init.data_type
            self.constants.add(init.name)
        for node in g.node:
            if node.op_type == "Constant":
                self.constants.update(node.output)
                for a in node.attribute:
                    if a.name == "value":
                        self.shapes[node.output[0]] = list(a.t.dims)
                        self.types[node.output[0]] = a.t.data_type

    def shape(self, name: str) -> list[int] | None:
        return self.shapes.get(name)

    def role(self, name: str) -> str:
        return "weights" if name in self.constants else "activations"

    def precision(self, name: str) -> str:
        return _PRECISION.get(self.types.get(name, TensorProto.FLOAT), "fp32")


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _matmul(node, g: _Graph, a_idx: int, b_idx: int) -> dict | str:
    a, b = g.shape(node.input[a_idx]), g.shape(node.input[b_idx])
    if a is None or b is None:
        return f"{node.op_type}(unknown shape)"
    roles = dict(a_role=g.role(node.input[a_idx]), b_role=g.role(node.input[b_idx]))
    if node.op_type == "Gemm":
        at = _attrs(node)
        m, k = (a[1], a[0]) if at.get("transA", 0) else (a[0], a[1])
        n = b[0] if at.get("transB", 0) else b[1]
        return dict(kind="matmul", m=m, n=n, k=k, **roles)
    a = [1, *a] if len(a) == 1 else a
    b = [*b, 1] if len(b) == 1 else b
    k, n = b[-2], b[-1]
    if len(b) == 2:  # shared right operand (weights): fold A's batch dims into M
        return dict(kind="matmul", m=prod(a[:-1]), n=n, k=k, **roles)
    batch_a, batch_b = a[:-2], b[:-2]
    width = max(len(batch_a), len(batch_b))
    batch_a = [1] * (width - len(batch_a)) + batch_a
    batch_b = [1] * (width - len(batch_b)) + batch_b
    count = prod(max(x, y) for x, y in zip(batch_a, batch_b))
    return dict(kind="matmul", m=a[-2], n=n, k=k, count=count, **roles)


def _conv(node, g: _Graph, x_idx: int, w_idx: int) -> dict | str:
    x, w = g.shape(node.input[x_idx]), g.shape(node.input[w_idx])
    y = g.shape(node.output[0])
    if x is None or w is None or y is None:
        return f"{node.op_type}(unknown shape)"
    if len(x) != 4:
        return f"{node.op_type}({len(x) - 2}d)"
    at = _attrs(node)
    strides = at.get("strides", [1, 1])
    if strides[0] != strides[1]:
        return f"{node.op_type}(unequal strides)"
    s, (kh, kw), (ho, wo) = strides[0], w[2:], y[2:]
    # One symmetric padding reproducing the inferred output size (this also absorbs
    # asymmetric pads and dilation, which change the output size but not the MACs).
    pad = ceil(((ho - 1) * s + kh - x[2]) / 2)
    if (x[3] + 2 * pad - kw) // s + 1 != wo or (x[2] + 2 * pad - kh) // s + 1 != ho:
        return f"{node.op_type}(asymmetric padding)"
    return dict(kind="conv2d", batch=x[0], in_channels=x[1], out_channels=w[0], height=x[2],
                width=x[3], kernel_h=kh, kernel_w=kw, stride=s, padding=pad,
                groups=at.get("group", 1), a_role=g.role(node.input[x_idx]),
                b_role=g.role(node.input[w_idx]))


def _vector(node, g: _Graph) -> dict | str | None:
    out = g.shape(node.output[0]) if node.output else None
    if out is None:
        return f"{node.op_type}(unknown shape)"
    elements = prod(out)
    if node.op_type == "Gather":
        data = node.input[0]
        shape = g.shape(data)
        if data in g.constants and shape is not None and len(shape) == 2:
            row = max(1, int(shape[1] * PRECISION_BYTES[g.precision(data)]))
            return dict(kind="vector", elements=elements, in_role="embeddings",
                        pattern="random", access_bytes=row, tag="embedding")
        return None
    if node.op_type in _REDUCE:
        inp = g.shape(node.input[0])
        if inp is None:
            return f"{node.op_type}(unknown shape)"
        ratio = max(1, ceil(prod(inp) / max(elements, 1)))
        return dict(kind="vector", elements=elements, ops_per_element=float(ratio), inputs=ratio)
    acts = [t for t in node.input if t and t not in g.constants]
    return dict(kind="vector", elements=elements, ops_per_element=_VECTOR_OPS[node.op_type],
                inputs=max(1, len(acts)))


def _map_node(node, g: _Graph) -> dict | str | None:
    """Op fields for a node, None for a free node, or a string naming why it is unsupported."""
    if node.domain not in ("", "ai.onnx"):
        return f"{node.domain}.{node.op_type}"
    t = node.op_type
    if t in _GEMM_INPUTS:
        return _matmul(node, g, *_GEMM_INPUTS[t])
    if t in _CONV_INPUTS:
        return _conv(node, g, *_CONV_INPUTS[t])
    if t in _VECTOR_OPS or t in _REDUCE or t == "Gather":
        return _vector(node, g)
    if t in _FREE:
        return None
    return t


def load_onnx(path: str | Path, *, batch: int | None = None, precision: str | None = None,
              dims: dict[str, int] | None = None) -> Workload:
    """Read an ONNX model as a Workload (name = file stem, samples = batch).

    ``dims`` gives sizes for named symbolic dimensions; others get ``batch`` (default 1).
    ``precision`` overrides the precision read from tensor element types.
    """
    from dse.workloads import WorkloadImportWarning

    path = Path(path)
    if not path.is_file():
        raise SpecError("file not found", where=str(path))
    model = _read(path, dict(dims or {}), batch or 1)
    g = _Graph(model)
    producers: dict[str, tuple[str, ...]] = {}
    ops: list[Op] = []
    names: set[str] = set()
    skipped: Counter[str] = Counter()
    for i, node in enumerate(model.graph.node):
        deps = tuple(dict.fromkeys(d for t in node.input if t for d in producers.get(t, ())))
        fields = _map_node(node, g)
        if isinstance(fields, dict):
            name = node.name or f"{node.op_type.lower()}_{i}"
            while name in names:
                name += "_"
            names.add(name)
            first = node.input[0] if node.input else ""
            fields.setdefault("tag", node.op_type)
            ops.append(Op(name=name, deps=deps, precision=precision or g.precision(first),
                          **fields))
            out_deps: tuple[str, ...] = (name,)
        else:
            if isinstance(fields, str):
                skipped[fields] += 1
            out_deps = deps
        for t in node.output:
            producers[t] = out_deps
    total = len(model.graph.node)
    if skipped:
        n = sum(skipped.values())
        kinds = ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(skipped.items()))
        warnings.warn(WorkloadImportWarning(
            f"{path}: skipped {n} of {total} nodes ({n / total:.1%}) with unsupported op types: "
            f"{kinds}"), stacklevel=2)
    if not ops:
        raise SpecError("no supported compute nodes in the model", where=str(path))
    samples = batch
    if samples is None:
        inits = {i.name for i in model.graph.initializer}
        first_input = next((vi.name for vi in model.graph.input if vi.name not in inits), None)
        shape = g.shape(first_input) if first_input else None
        samples = shape[0] if shape else 1
    ops = topological_order(ops)
    return Workload(name=path.stem, ops=ops, samples=samples,
                    params={"onnx": str(path), "nodes": total, "skipped_nodes": sum(skipped.values())})

