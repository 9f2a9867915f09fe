"""VGG layer tables, by the names the papers use (conv1_1, relu1_1, ..., pool5). No torch here."""

from __future__ import annotations

from dataclasses import dataclass

# Convolutions per block and channels per block (Simonyan & Zisserman, table 1, configurations D and E).
ARCHS: dict[str, tuple[int, ...]] = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
BLOCK_CHANNELS = (64, 128, 256, 512, 512)
DEFAULT_CONTENT_LAYER = "relu4_2"
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class Layer:
    name: str  # "conv3_2"
    kind: str  # "conv" | "relu" | "pool"
    index: int  # position in torchvision's `features` Sequential (same order as this table)
    in_channels: int
    out_channels: int
    scale: int  # spatial downsampling of this layer's output relative to the image (1, 2, 4, ...)


def vgg_layers(arch: str) -> list[Layer]:
    """Every layer of the convolutional part of `arch`, in order."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of: {', '.join(ARCHS)}")
    layers: list[Layer] = []
    c_in, scale = 3, 1
    for b, (n_conv, c_out) in enumerate(zip(ARCHS[arch], BLOCK_CHANNELS), start=1):
        for i in range(1, n_conv + 1):
            layers.append(Layer(f"conv{b}_{i}", "conv", len(layers), c_in, c_out, scale))
            layers.append(Layer(f"relu{b}_{i}", "relu", len(layers), c_out, c_out, scale))
            c_in = c_out
        scale *= 2
        layers.append(Layer(f"pool{b}", "pool", len(layers), c_out, c_out, scale))
    return layers


def truncate(arch: str, taps: list[str] | tuple[str, ...]) -> list[Layer]:
    """Layers from the input up to and including the deepest of `taps`; unknown names raise ValueError."""
    layers = vgg_layers(arch)
    by_name = {layer.name: layer for layer in layers}
    unknown = [t for t in taps if t not in by_name]
    if unknown:
        raise ValueError(f"unknown layer {unknown[0]!r} for {arch}; valid layers: {', '.join(by_name)}")
    if not taps:
        raise ValueError("at least one layer must be chosen")
    deepest = max(by_name[t].index for t in taps)
    return layers[: deepest + 1]


def conv_layers(layers: list[Layer]) -> list[Layer]:
    return [layer for layer in layers if layer.kind == "conv"]
