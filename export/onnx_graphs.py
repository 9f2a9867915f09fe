"""Build the features graph and its companion gradient graph (a vector-Jacobian product through VGG) with onnx.helper.

Why onnx.helper and not torch.onnx.export: torch cannot export an autograd backward, so the VJP has to be written as
forward ops anyway. Writing both graphs here lets us (1) pick the ops that run fast and exist on every onnxruntime
execution provider (Conv with flipped, transposed weights instead of ConvTranspose: 2.2x faster on ORT's CPU EP; ReLU
masks as Mul instead of Where; first-max pooling masks from elementwise ops instead of the CPU-only MaxUnpool),
(2) name every input, output and dynamic axis ourselves, and (3) point both graphs at one external weights file, so
the weights are stored once. The torch module in torch_vgg.py stays the oracle: export validates against it.

Gradient graph, per layer, walking back from the deepest tap (g = dL/d(layer output), upstream grads added at taps):
  relu k : g <- g * float(bool(relu_k))               relu_k is the forward output, saved by the features graph
  conv k : g <- Conv(g, flip(transpose(W_k)), pad 1)  the flipped weights are derived in-graph from W_k (folded by ORT)
  maxpool: g <- ScatterElements(zeros, argmax, g * float(bool(pool_out)))   MaxPool's own indices (first maximum),
           saved by the features graph; the pre-pool ReLU's mask is taken at the maxima, so that ReLU is not saved
  avgpool: g <- Pad(DepthToSpace(Tile(g) / 4))
  input  : g <- Conv1x1(g, A^T)                       the preprocessing's Jacobian (x_net = A x + c)
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .arch import Layer

OPSET = 17
IMAGE = "image"
GRAD_IMAGE = "grad_image"
WEIGHTS_FILE = "weights.bin"
_ALIGN = 4096  # external tensors page-aligned so onnxruntime can map them


def grad_name(tap: str) -> str:
    return f"grad_{tap}"


def _dims(scale: int) -> tuple[str, str]:
    # Named dynamic axes: "height" at full resolution, "height_div4" after two pools (floor division, like torch).
    return ("height", "width") if scale == 1 else (f"height_div{scale}", f"width_div{scale}")


def _value_info(name: str, channels: int, scale: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, channels, *_dims(scale)])


class _Builder:
    def __init__(self, prefix: str):
        self.nodes: list[onnx.NodeProto] = []
        self.prefix, self.n = prefix, 0

    def op(self, op_type: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        self.n += 1
        out = output or f"{self.prefix}/{op_type}_{self.n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{self.prefix}/{op_type}_{self.n}", **attrs))
        return out

    def ops(self, op_type: str, inputs: list[str], n_out: int, **attrs) -> list[str]:
        self.n += 1
        outs = [f"{self.prefix}/{op_type}_{self.n}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"{self.prefix}/{op_type}_{self.n}", **attrs))
        return outs


def _initializers(layers: list[Layer], convs: dict, pre_a: np.ndarray, pre_c: np.ndarray) -> dict[str, np.ndarray]:
    arrays = {
        "preprocess.weight": pre_a.reshape(3, 3, 1, 1).astype(np.float32),  # (out, in, 1, 1)
        "preprocess.bias": pre_c.astype(np.float32),
    }
    for layer in layers:
        if layer.kind == "conv":
            w, b = convs[layer.name]
            arrays[f"{layer.name}.weight"] = w
            arrays[f"{layer.name}.bias"] = b
    return arrays


# Small constants of the gradient graph's shape arithmetic and pooling; stored inline (shape inference reads them).
_CONSTS = {
    "const.two": np.array([2, 2], np.int64),
    "const.zeros6": np.zeros(6, np.int64),
    "const.hw_axes": np.array([2, 3], np.int64),
    "const.hw_starts": np.array([0, 0], np.int64),
    "const.hw_axes_start": np.array([2], np.int64),
    "const.hw_axes_end": np.array([4], np.int64),
    "const.one": np.array(1.0, np.float32),
    "const.quarter": np.array(0.25, np.float32),
    "const.flip_starts": np.array([-1, -1], np.int64),
    "const.flip_ends": np.array([np.iinfo(np.int64).min] * 2, np.int64),
    "const.flip_steps": np.array([-1, -1], np.int64),
    "const.flat": np.array([1, -1], np.int64),
}


def write_weights(arrays: dict[str, np.ndarray], path) -> dict[str, tuple[int, int]]:
    """Write all tensors into one file; returns name -> (offset, length)."""
    table, offset = {}, 0
    with open(path, "wb") as f:
        for name, a in arrays.items():
            pad = (-offset) % _ALIGN
            f.write(b"\0" * pad)
            offset += pad
            data = np.ascontiguousarray(a).tobytes()
            f.write(data)
            table[name] = (offset, len(data))
            offset += len(data)
    return table


def _external(name: str, a: np.ndarray, table: dict[str, tuple[int, int]]) -> onnx.TensorProto:
    t = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(a.dtype), dims=a.shape)
    offset, length = table[name]
    for key, value in (("location", WEIGHTS_FILE), ("offset", str(offset)), ("length", str(length))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    t.data_location = TensorProto.EXTERNAL
    return t


def indices_name(pool: str) -> str:
    return f"{pool}_idx"


def _pre_pool_relus(layers: list[Layer], pooling: str) -> set[str]:
    """With max pooling, ReLUs feeding a pool need no saved output: the pool's backward routes the gradient to the
    window maxima only, and a routed value is > 0 exactly where the pool output is (the pool output's mask is used)."""
    if pooling != "max":
        return set()
    return {layers[i - 1].name for i, layer in enumerate(layers) if layer.kind == "pool"}


def gradient_state(layers: list[Layer], taps: list[str], pooling: str) -> list[str]:
    """Forward tensors the gradient graph reads, in network order: ReLU outputs (their nonzero pattern is the ReLU's
    derivative) and, with max pooling, each pool's output and int64 argmax indices instead of the pool's input."""
    skip = _pre_pool_relus(layers, pooling) - set(taps)
    names: list[str] = []
    for layer in layers:
        if layer.kind == "relu" and layer.name not in skip:
            names.append(layer.name)
        elif layer.kind == "pool" and pooling == "max":
            names += [layer.name, indices_name(layer.name)]
    return names


def saved_outputs(layers: list[Layer], taps: list[str], pooling: str = "max") -> list[str]:
    """Forward state the features graph returns besides the taps (the taps are returned anyway)."""
    return [n for n in gradient_state(layers, taps, pooling) if n not in taps]


def _state_info(name: str, by_name: dict[str, Layer]) -> onnx.ValueInfoProto:
    if name.endswith("_idx"):
        layer = by_name[name[:-4]]
        return helper.make_tensor_value_info(name, TensorProto.INT64, [1, layer.out_channels, *_dims(layer.scale)])
    layer = by_name[name]
    return _value_info(name, layer.out_channels, layer.scale)


def build_features(layers: list[Layer], taps: list[str], pooling: str, arrays: dict, table: dict) -> onnx.ModelProto:
    b = _Builder("features")
    x = b.op("Conv", [IMAGE, "preprocess.weight", "preprocess.bias"])
    saved = saved_outputs(layers, taps, pooling)
    used = {"preprocess.weight", "preprocess.bias"}
    for layer in layers:
        out = layer.name  # the tensor is named by its layer: the engine reads names, never positions
        if layer.kind == "conv":
            x = b.op("Conv", [x, f"{out}.weight", f"{out}.bias"], out, pads=[1, 1, 1, 1], kernel_shape=[3, 3])
            used |= {f"{out}.weight", f"{out}.bias"}
        elif layer.kind == "relu":
            x = b.op("Relu", [x], out)
        elif pooling == "max":  # with argmax indices (flat over C*H*W, first maximum on ties, like torch)
            b.n += 1
            b.nodes.append(helper.make_node("MaxPool", [x], [out, indices_name(out)], name=f"features/MaxPool_{b.n}",
                                            kernel_shape=[2, 2], strides=[2, 2]))
            x = out
        else:
            x = b.op("AveragePool", [x], out, kernel_shape=[2, 2], strides=[2, 2])
    by_name = {layer.name: layer for layer in layers}
    outputs = [_state_info(n, by_name) for n in list(taps) + saved]
    graph = helper.make_graph(
        b.nodes, "nst_features",
        [helper.make_tensor_value_info(IMAGE, TensorProto.FLOAT, [1, 3, "height", "width"])],
        outputs,
        initializer=[_external(n, arrays[n], table) for n in arrays if n in used],
    )
    return _model(graph)


def _maxpool_backward(b: _Builder, g: str, pool: str, shape_of: str) -> str:
    """Scatter the gradient to each window's argmax (MaxPool's own indices: the first maximum in row-major order, as
    torch picks; an equality mask would send it to every tied position, wrong in flat regions). Windows do not
    overlap, so the indices are unique; the row/column that floor-mode pooling dropped stays zero.
    shape_of: a saved tensor shaped like the pool's input. Measured against the SpaceToDepth/Equal first-max masks
    this replaced: gradient graph 1.18 -> 0.94 s at 512 px on 2 cores, identical results (bench/README.md)."""
    shape = b.op("Shape", [shape_of])
    zeros = b.op("Reshape", [b.op("ConstantOfShape", [shape]), "const.flat"])  # (1, C*H*W)
    idx = b.op("Reshape", [indices_name(pool), "const.flat"])
    up = b.op("ScatterElements", [zeros, idx, b.op("Reshape", [g, "const.flat"])], axis=1)
    return b.op("Reshape", [up, shape])


def _relu_mask(b: _Builder, relu_out: str) -> str:
    """0/1 where the (saved, >= 0) ReLU output is nonzero, i.e. > 0: torch's convention at 0. Cast->bool->float ran
    1.7x faster than Sign on ORT's CPU provider (21 vs 36 ms on 64x512x512, bench/README.md)."""
    return b.op("Cast", [b.op("Cast", [relu_out], to=TensorProto.BOOL)], to=TensorProto.FLOAT)


def _avgpool_backward(b: _Builder, g: str, y: str) -> str:
    ends = b.op("Mul", [b.op("Slice", [b.op("Shape", [g]), "const.hw_axes_start", "const.hw_axes_end"]), "const.two"])
    gq = b.op("Mul", [g, "const.quarter"])
    return _unpool(b, b.op("Concat", [gq, gq, gq, gq], axis=1), y, ends)


def _unpool(b: _Builder, g4: str, y: str, ends: str) -> str:
    """(1, 4C, h, w) -> (1, C, H, W): interleave back (DepthToSpace is SpaceToDepth's inverse in DCR mode) and give
    the row/column that floor-mode pooling dropped a zero gradient."""
    up = b.op("DepthToSpace", [g4], blocksize=2, mode="DCR")
    hw = b.op("Slice", [b.op("Shape", [y]), "const.hw_axes_start", "const.hw_axes_end"])
    pads = b.op("Concat", ["const.zeros6", b.op("Sub", [hw, ends])], axis=0)  # [0,0,0,0 | 0,0,dH,dW]
    return b.op("Pad", [up, pads])


def build_gradient(layers: list[Layer], taps: list[str], pooling: str, arrays: dict, table: dict) -> onnx.ModelProto:
    b = _Builder("gradient")
    by_name = {layer.name: layer for layer in layers}
    used = {"preprocess.weight"}
    skip_relu = _pre_pool_relus(layers, pooling) - set(taps)
    g = None
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        if layer.name in taps:
            g = grad_name(layer.name) if g is None else b.op("Add", [g, grad_name(layer.name)])
        if layer.kind == "relu" and layer.name in skip_relu:
            pass  # masked at the pool below it (see _pre_pool_relus)
        elif layer.kind == "relu":
            g = b.op("Mul", [g, _relu_mask(b, layer.name)])
        elif layer.kind == "conv":
            wt = b.op("Transpose", [f"{layer.name}.weight"], perm=[1, 0, 2, 3])  # (Cin, Cout, 3, 3)
            wf = b.op("Slice", [wt, "const.flip_starts", "const.flip_ends", "const.hw_axes", "const.flip_steps"])
            g = b.op("Conv", [g, wf], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
            used.add(f"{layer.name}.weight")
        elif pooling == "max":
            if layers[i - 1].name in skip_relu:  # the pre-pool ReLU's mask, at the maxima: the pool output's
                g = b.op("Mul", [g, _relu_mask(b, layer.name)])
            # zeros shaped like the pool input: the block's first ReLU output has that shape and is always saved
            block_first = next(lay.name for lay in layers[:i] if lay.kind == "relu" and lay.scale == layers[i - 1].scale)
            g = _maxpool_backward(b, g, layer.name, block_first)
        else:
            g = _avgpool_backward(b, g, layers[i - 1].name)  # the pool's input, a saved ReLU output
    at = b.op("Transpose", ["preprocess.weight"], perm=[1, 0, 2, 3])  # A^T as a 1x1 conv
    b.op("Conv", [g, at], GRAD_IMAGE)
    inputs = [_value_info(grad_name(t), by_name[t].out_channels, by_name[t].scale) for t in taps]
    inputs += [_state_info(n, by_name) for n in gradient_state(layers, taps, pooling)]
    graph = helper.make_graph(
        b.nodes, "nst_gradient", inputs,
        [helper.make_tensor_value_info(GRAD_IMAGE, TensorProto.FLOAT, [1, 3, "height", "width"])],
        initializer=[_external(n, arrays[n], table) for n in arrays if n in used]
        + [numpy_helper.from_array(v, k) for k, v in _CONSTS.items()],
    )
    return _model(graph)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="nst-export")
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    return model


def build_graphs(layers: list[Layer], taps: list[str], pooling: str, convs: dict, pre_a: np.ndarray,
                 pre_c: np.ndarray, out_dir) -> dict[str, str]:
    """Write weights.bin, features.onnx and gradient.onnx into out_dir; returns their file names."""
    from pathlib import Path

    out_dir = Path(out_dir)
    arrays = _initializers(layers, convs, pre_a, pre_c)
    table = write_weights(arrays, out_dir / WEIGHTS_FILE)
    files = {"features": "features.onnx", "gradient": "gradient.onnx", "weights": WEIGHTS_FILE}
    for key, build in (("features", build_features), ("gradient", build_gradient)):
        model = build(layers, taps, pooling, arrays, table)
        onnx.save_model(model, str(out_dir / files[key]))
        onnx.checker.check_model(str(out_dir / files[key]))  # by path, so the external weights are checked too
    return files
