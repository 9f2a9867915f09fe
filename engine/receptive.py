"""Receptive fields, computed from a model's layer list (each LayerSpec's kernel, stride and padding), not tabulated.

For a chain of layers with kernel k, stride s and padding p, a unit's field grows by (k - 1) x jump per layer, the jump
(input pixels between neighbouring units) multiplies by s, and unit 0's field starts p x jump further up/left."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .manifest import LayerSpec

Box = tuple[int, int, int, int]  # (top, left, bottom, right) in input pixels, bottom/right exclusive


@dataclass(frozen=True)
class ReceptiveField:
    size: int  # side of the square of input pixels that can influence one unit
    stride: int  # input pixels between neighbouring units (the layer's downsampling)
    offset: int  # input coordinate of unit 0's first pixel (negative: the field starts in the zero padding)

    def box(self, row: int, col: int) -> Box:
        """The input pixels seen by the unit at (row, col) of the layer's map; may extend past the image's borders."""
        top, left = row * self.stride + self.offset, col * self.stride + self.offset
        return top, left, top + self.size, left + self.size

    def centre(self, row: int, col: int) -> tuple[float, float]:
        top, left, bottom, right = self.box(row, col)
        return (top + bottom - 1) / 2, (left + right - 1) / 2


def receptive_field(layers: Sequence[LayerSpec], name: str) -> ReceptiveField:
    """The receptive field of layer `name` in the network `layers` (input first). KeyError if it is not there."""
    size, jump, offset = 1, 1, 0
    for spec in layers:
        size += (spec.kernel - 1) * jump
        offset -= spec.padding * jump
        jump *= spec.stride
        if spec.name == name:
            return ReceptiveField(size, jump, offset)
    raise KeyError(name)
