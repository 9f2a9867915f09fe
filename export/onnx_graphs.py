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
  maxpool: g <- Pad(DepthToSpace(Tile(g * mask(m)) * firstmax(SpaceToDepth(crop(y)))))   y = the pool's input (a
           saved relu), m = its window maxima; mask(m) is y's ReLU mask at the maxima, so y's own mask is skipped
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
_CONSTS: dict[str, np.ndarray] = {
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


def _relus(layers: list[Layer]) -> list[Layer]:
    return [layer for layer in layers if layer.kind == "relu"]


def saved_outputs(layers: list[Layer], taps: list[str]) -> list[str]:
    """Forward state the gradient graph needs and the features graph therefore also returns: every ReLU output
    (its sign is the ReLU's derivative; the max-pool gradient needs the pool's input, which is always a ReLU output)."""
    return [layer.name for layer in _relus(layers) if layer.name not in taps]


def build_features(layers: list[Layer], taps: list[str], pooling: str, arrays: dict, table: dict) -> onnx.ModelProto:
    b = _Builder("features")
    x = b.op("Conv", [IMAGE, "preprocess.weight", "preprocess.bias"])
    saved = set(saved_outputs(layers, taps))
    used = {"preprocess.weight", "preprocess.bias"}
    for layer in layers:
        out = layer.name  # the tensor is named by its layer: the engine reads names, never positions
        if layer.kind == "conv":
            x = b.op("Conv", [x, f"{out}.weight", f"{out}.bias"], out, pads=[1, 1, 1, 1], kernel_shape=[3, 3])
            used |= {f"{out}.weight", f"{out}.bias"}
        elif layer.kind == "relu":
            x = b.op("Relu", [x], out)
        elif pooling == "max":
            x = b.op("MaxPool", [x], out, kernel_shape=[2, 2], strides=[2, 2])
        else:
            x = b.op("AveragePool", [x], out, kernel_shape=[2, 2], strides=[2, 2])
    by_name = {layer.name: layer for layer in layers}
    state = sorted(saved, key=lambda n: by_name[n].index)  # network order
    outputs = [_value_info(n, by_name[n].out_channels, by_name[n].scale) for n in list(taps) + state]
    graph = helper.make_graph(
        b.nodes,
        "nst_features",
        [helper.make_tensor_value_info(IMAGE, TensorProto.FLOAT, [1, 3, "height", "width"])],
        outputs,
        initializer=[_external(n, arrays[n], table) for n in arrays if n in used],
    )
    return _model(graph)


def _maxpool_backward(b: _Builder, g: str, y: str, relu_mask: bool) -> str:
    """Route each window's gradient to its first maximum in row-major order, as torch does. An equality mask would
    send it to every tied position (wrong in flat regions, e.g. where a ReLU zeroed a whole window). MaxPool's own
    argmax indices are not used: onnxruntime's CUDA kernel scans windows column-major, so its ties differ from torch.
    relu_mask: also apply the ReLU mask of y (the pool's input, a ReLU output) here, on the pooled tensor: the
    gradient only reaches window maxima, which are > 0 exactly where the pooled maximum m is (4x fewer elements than
    masking at full resolution)."""
    ends = b.op("Mul", [b.op("Slice", [b.op("Shape", [g]), "const.hw_axes_start", "const.hw_axes_end"]), "const.two"])
    yc = b.op("Slice", [y, "const.hw_starts", ends, "const.hw_axes"])  # drop torch's floor-mode leftover row/col
    s = b.op("SpaceToDepth", [yc], blocksize=2)  # (1, 4C, h, w): window positions (0,0) (0,1) (1,0) (1,1)
    x0, x1, x2, x3 = b.ops("Split", [s], 4, axis=1)
    m = b.op("Max", [x0, x1, x2, x3])
    if relu_mask:
        g = b.op("Mul", [g, _relu_mask(b, m)])
    e0, e1, e2 = (b.op("Cast", [b.op("Equal", [xi, m])], to=TensorProto.FLOAT) for xi in (x0, x1, x2))
    r1 = b.op("Sub", ["const.one", e0])  # 1 where no earlier position was the max
    m1 = b.op("Mul", [e1, r1])
    r2 = b.op("Sub", [r1, m1])
    m2 = b.op("Mul", [e2, r2])
    m3 = b.op("Sub", [r2, m2])  # the last position is the max iff none before it was
    mask = b.op("Concat", [e0, m1, m2, m3], axis=1)
    gt = b.op("Concat", [g, g, g, g], axis=1)
    return _unpool(b, b.op("Mul", [gt, mask]), y, ends)


def _relu_mask(b: _Builder, relu_out: str) -> str:
    """0/1 where a ReLU output (>= 0) is nonzero, i.e. > 0: torch's convention at 0. Cast->bool->float ran 1.7x
    faster than Sign on ORT's CPU provider (21 vs 36 ms on 64x512x512, bench/README.md)."""
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
    # ReLUs feeding a max pool get their mask inside the pool's backward, unless tapped (a tap's own gradient
    # arrives at full resolution, below the pool).
    masked_at_pool = (
        set()
        if pooling != "max"
        else {layers[i - 1].name for i, layer in enumerate(layers) if layer.kind == "pool"} - set(taps)
    )
    g = ""  # the gradient flowing back; it starts at the deepest tap (the network ends there)
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        if layer.name in taps:
            g = b.op("Add", [g, grad_name(layer.name)]) if g else grad_name(layer.name)
        if layer.kind == "relu" and layer.name in masked_at_pool:
            pass  # its mask was applied by the max pool above it
        elif layer.kind == "relu":
            g = b.op("Mul", [g, _relu_mask(b, layer.name)])
        elif layer.kind == "conv":
            wt = b.op("Transpose", [f"{layer.name}.weight"], perm=[1, 0, 2, 3])  # (Cin, Cout, 3, 3)
            wf = b.op("Slice", [wt, "const.flip_starts", "const.flip_ends", "const.hw_axes", "const.flip_steps"])
            g = b.op("Conv", [g, wf], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
            used.add(f"{layer.name}.weight")
        else:
            y = layers[i - 1].name  # the pool's input: a ReLU output in VGG, saved by the features graph
            if pooling == "max":
                g = _maxpool_backward(b, g, y, relu_mask=y in masked_at_pool)
            else:
                g = _avgpool_backward(b, g, y)
    at = b.op("Transpose", ["preprocess.weight"], perm=[1, 0, 2, 3])  # A^T as a 1x1 conv
    b.op("Conv", [g, at], GRAD_IMAGE)
    inputs = [_value_info(grad_name(t), by_name[t].out_channels, by_name[t].scale) for t in taps]
    inputs += [_value_info(r.name, r.out_channels, r.scale) for r in _relus(layers)]
    graph = helper.make_graph(
        b.nodes,
        "nst_gradient",
        inputs,
        [helper.make_tensor_value_info(GRAD_IMAGE, TensorProto.FLOAT, [1, 3, "height", "width"])],
        initializer=[_external(n, arrays[n], table) for n in arrays if n in used]
        + [numpy_helper.from_array(v, k) for k, v in _CONSTS.items()],
    )
    return _model(graph)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="nst-export")
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    return model


def build_graphs(
    layers: list[Layer], taps: list[str], pooling: str, convs: dict, pre_a: np.ndarray, pre_c: np.ndarray, out_dir
) -> dict[str, str]:
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
