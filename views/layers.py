"""Which layers a view may use: the model's taps. A layer that is not one is refused in one line saying what to do."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..engine.errors import LayerError
from ..engine.manifest import Manifest

_VGG_NAME = re.compile(r"^(?:(?:conv|relu)[1-5]_[1-4]|pool[1-5])$")


def require_taps(manifest: Manifest, layers: Sequence[str], model_dir: str = "DIR") -> None:
    """LayerError unless every layer is one of the model's taps: a misspelt name is called unknown; a real VGG layer
    the export left out comes with the nst-export command that adds it."""
    taps = ", ".join(manifest.taps)
    for layer in layers:
        if layer in manifest.taps:
            continue
        if not _VGG_NAME.match(layer):
            raise LayerError(
                f"unknown layer {layer!r}; layers are named as in the papers (conv1_1, relu1_1, ..., "
                f"pool5) and this model exports {taps}"
            )
        missing = [x for x in layers if x not in manifest.taps and _VGG_NAME.match(x)]
        raise LayerError(
            f"layer {layer!r} is not exported by this model (its layers: {taps}); re-export it with "
            f"nst-export --out {model_dir} --force --extra-layers {','.join(missing)} (plus your other "
            "options)"
        )
