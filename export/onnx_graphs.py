"""Build the features graph and its companion gradient graph (a vector-Jacobian product through VGG) with onnx.helper.

Why onnx.helper and not torch.onnx.export: torch cannot export an autograd backward, so the VJP has to be written as
forward ops anyway. Writing both graphs here lets us (1) pick the ops that run fast and exist on every onnxruntime
execution provider (Conv with flipped, transposed weights instead of ConvTranspose: 2.2x faster on ORT's CPU EP; ReLU
masks as Mul instead of Where; first-max pooling masks from elementwise ops instead of the CPU-only MaxUnpool),
(2) name every input, output and dynamic axis ourselves, and (3) point both graphs at one external weights file, so
the weights are stored once. The torch module in torch_vgg.py stays the oracle: export validates against it.

Forward state, in its smallest exact form: the features graph returns, besides the taps, one bool mask per ReLU
(`mask_relu3_2` = relu3_2 > 0) and per max pool (`mask_pool2`, (1, 4C, h, w): which of the 4 window positions is the
window's first maximum in row-major order, and > 0 when the ReLU below is folded in), plus each pool's input size
(`size_pool2`, for the floor-mode row/column). 1 byte per element instead of a float32 ReLU output's 4.

Gradient graph, per layer, walking back from the deepest tap (g = dL/d(layer output), upstream grads added at taps):
  relu k : g <- g * float(mask_relu_k)
  conv k : g <- Conv(g, flip(transpose(W_k)), pad 1)  the flipped weights are derived in-graph from W_k (folded by ORT)
  maxpool: g <- Pad(DepthToSpace(Tile(g) * float(mask_pool_k)))   the ReLU below a max pool is masked here, on the
           4x smaller pooled tensor (the gradient only reaches window maxima, which are > 0 where the max is)
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
    "const.zero": np.array(0.0, np.float32),
    "const.quarter": np.array(0.25, np.float32),
    "const.flip_starts": np.array([-1, -1], np.int64),
    "const.flip_ends": np.array([np.iinfo(np.int64).min] * 2, np.int64),
    "const.flip_steps": np.array([-1, -1], np.int64),
}


_FEATURE_CONSTS = (
    "const.two",
    "const.hw_axes",
    "const.hw_starts",
    "const.hw_axes_start",
    "const.hw_axes_end",
    "const.zero",
)
_FEATURE_ONLY = ("const.zero",)


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


def mask_name(layer: str) -> str:
    return f"mask_{layer}"


def size_name(pool: str) -> str:
    return f"size_{pool}"


def masked_at_pool(layers: list[Layer], taps: list[str], pooling: str) -> set[str]:
    """ReLUs whose mask is folded into the max pool above them: every pre-pool ReLU that is not a tap (a tap's own
    gradient arrives at full resolution, below the pool, so it keeps its own mask)."""
    if pooling != "max":
        return set()
    return {layers[i - 1].name for i, layer in enumerate(layers) if layer.kind == "pool"} - set(taps)


def saved_outputs(layers: list[Layer], taps: list[str], pooling: str) -> list[str]:
    """The forward state the gradient graph reads (features-graph outputs besides the taps), in network order."""
    folded = masked_at_pool(layers, taps, pooling)
    names = []
    for layer in layers:
        if layer.kind == "relu" and layer.name not in folded:
            names.append(mask_name(layer.name))
        elif layer.kind == "pool":
            names += [mask_name(layer.name), size_name(layer.name)] if pooling == "max" else [size_name(layer.name)]
    return names


def _state_info(name: str, by_name: dict[str, Layer]) -> onnx.ValueInfoProto:
    kind, layer = name.split("_", 1)
    if kind == "size":
        return helper.make_tensor_value_info(name, TensorProto.INT64, [2])
    spec = by_name[layer]
    channels = 4 * spec.out_channels if spec.kind == "pool" else spec.out_channels
    return helper.make_tensor_value_info(name, TensorProto.BOOL, [1, channels, *_dims(spec.scale)])


def _firstmax_mask(b: _Builder, y: str, pooled: str, positive: bool) -> str:
    """(1, 4C, h, w) bool: window position k (row-major: (0,0) (0,1) (1,0) (1,1)) holds the window's first maximum,
    as torch routes max-pool gradients. An equality mask alone would send the gradient to every tied position (wrong
    in flat regions, e.g. where a ReLU zeroed a whole window). MaxPool's own argmax indices are not used: onnxruntime's
    CUDA kernel scans windows column-major, so its ties differ from torch. positive: also require max > 0 (the ReLU
    below the pool, folded in)."""
    ends = b.op(
        "Mul", [b.op("Slice", [b.op("Shape", [pooled]), "const.hw_axes_start", "const.hw_axes_end"]), "const.two"]
    )
    yc = b.op("Slice", [y, "const.hw_starts", ends, "const.hw_axes"])  # drop torch's floor-mode leftover row/col
    x0, x1, x2, _ = b.ops("Split", [b.op("SpaceToDepth", [yc], blocksize=2)], 4, axis=1)  # the 4th: by elimination
    e0, e1, e2 = (b.op("Equal", [xi, pooled]) for xi in (x0, x1, x2))  # MaxPool returns the max value exactly
    none0 = b.op("Not", [e0])  # no earlier position was the max
    f1 = b.op("And", [e1, none0])
    none01 = b.op("And", [none0, b.op("Not", [e1])])
    f2 = b.op("And", [e2, none01])
    f3 = b.op("And", [none01, b.op("Not", [e2])])  # the last position is the max iff none before it was
    firsts = [e0, f1, f2, f3]
    if positive:
        p = b.op("Greater", [pooled, "const.zero"])
        firsts = [b.op("And", [f, p]) for f in firsts]
    return b.op("Concat", firsts, axis=1)


def build_features(layers: list[Layer], taps: list[str], pooling: str, arrays: dict, table: dict) -> onnx.ModelProto:
    b = _Builder("features")
    x = b.op("Conv", [IMAGE, "preprocess.weight", "preprocess.bias"])
    state = saved_outputs(layers, taps, pooling)
    folded = masked_at_pool(layers, taps, pooling)
    used = {"preprocess.weight", "preprocess.bias"}
    for layer in layers:
        out = layer.name  # a tapped tensor is named by its layer: the engine reads names, never positions
        if layer.kind == "conv":
            x = b.op("Conv", [x, f"{out}.weight", f"{out}.bias"], out, pads=[1, 1, 1, 1], kernel_shape=[3, 3])
            used |= {f"{out}.weight", f"{out}.bias"}
        elif layer.kind == "relu":
            x = b.op("Relu", [x], out)
            if mask_name(out) in state:
                b.op("Cast", [x], mask_name(out), to=TensorProto.BOOL)  # r > 0 for r >= 0: torch's convention at 0
        else:
            y = x
            kind = "MaxPool" if pooling == "max" else "AveragePool"
            x = b.op(kind, [y], out, kernel_shape=[2, 2], strides=[2, 2])
            b.op("Slice", [b.op("Shape", [y]), "const.hw_axes_start", "const.hw_axes_end"], size_name(out))
            if pooling == "max":
                mask = _firstmax_mask(b, y, x, positive=y in folded)
                b.op("Identity", [mask], mask_name(out))
    by_name = {layer.name: layer for layer in layers}
    outputs = [_value_info(n, by_name[n].out_channels, by_name[n].scale) for n in taps]
    outputs += [_state_info(n, by_name) for n in state]
    graph = helper.make_graph(
        b.nodes,
        "nst_features",
        [helper.make_tensor_value_info(IMAGE, TensorProto.FLOAT, [1, 3, "height", "width"])],
        outputs,
        initializer=[_external(n, arrays[n], table) for n in arrays if n in used]
        + [numpy_helper.from_array(_CONSTS[k], k) for k in _FEATURE_CONSTS],
    )
    return _model(graph)


def _unpool(b: _Builder, g4: str, size: str, g: str) -> str:
    """(1, 4C, h, w) -> (1, C, H, W): interleave back (DepthToSpace is SpaceToDepth's inverse in DCR mode) and give
    the row/column that floor-mode pooling dropped (H = size[0] may be 2h + 1) a zero gradient."""
    up = b.op("DepthToSpace", [g4], blocksize=2, mode="DCR")
    ends = b.op("Mul", [b.op("Slice", [b.op("Shape", [g]), "const.hw_axes_start", "const.hw_axes_end"]), "const.two"])
    pads = b.op("Concat", ["const.zeros6", b.op("Sub", [size, ends])], axis=0)  # [0,0,0,0 | 0,0,dH,dW]
    return b.op("Pad", [up, pads])


def build_gradient(layers: list[Layer], taps: list[str], pooling: str, arrays: dict, table: dict) -> onnx.ModelProto:
    b = _Builder("gradient")
    by_name = {layer.name: layer for layer in layers}
    used = {"preprocess.weight"}
    folded = masked_at_pool(layers, taps, pooling)
    g = ""  # the gradient flowing back; it starts at the deepest tap (the network ends there)
    for layer in reversed(layers):
        if layer.name in taps:
            g = b.op("Add", [g, grad_name(layer.name)]) if g else grad_name(layer.name)
        if layer.kind == "relu" and layer.name not in folded:
            g = b.op("Mul", [g, b.op("Cast", [mask_name(layer.name)], to=TensorProto.FLOAT)])
        elif layer.kind == "conv":
            wt = b.op("Transpose", [f"{layer.name}.weight"], perm=[1, 0, 2, 3])  # (Cin, Cout, 3, 3)
            wf = b.op("Slice", [wt, "const.flip_starts", "const.flip_ends", "const.hw_axes", "const.flip_steps"])
            g = b.op("Conv", [g, wf], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
            used.add(f"{layer.name}.weight")
        elif layer.kind == "pool" and pooling == "max":
            mask = b.op("Cast", [mask_name(layer.name)], to=TensorProto.FLOAT)
            g = _unpool(b, b.op("Mul", [b.op("Concat", [g, g, g, g], axis=1), mask]), size_name(layer.name), g)
        elif layer.kind == "pool":
            gq = b.op("Mul", [g, "const.quarter"])
            g = _unpool(b, b.op("Concat", [gq, gq, gq, gq], axis=1), size_name(layer.name), g)
    at = b.op("Transpose", ["preprocess.weight"], perm=[1, 0, 2, 3])  # A^T as a 1x1 conv
    b.op("Conv", [g, at], GRAD_IMAGE)
    inputs = [_value_info(grad_name(t), by_name[t].out_channels, by_name[t].scale) for t in taps]
    inputs += [_state_info(n, by_name) for n in saved_outputs(layers, taps, pooling)]
    graph = helper.make_graph(
        b.nodes,
        "nst_gradient",
        inputs,
        [helper.make_tensor_value_info(GRAD_IMAGE, TensorProto.FLOAT, [1, 3, "height", "width"])],
        initializer=[_external(n, arrays[n], table) for n in arrays if n in used]
        + [numpy_helper.from_array(v, k) for k, v in _CONSTS.items() if k not in _FEATURE_ONLY],
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
