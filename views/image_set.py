"""The images a units search runs over: natural photos shipped inside scikit-image (offline: they are files of the
installed package, nothing is downloaded) and/or the user's folders; each at two scales, as is and mirrored."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.errors import ImageError
from ..engine.images import fit_long_side, load_image, resize

# Photographs in scikit-image's data directory (checked present in scikit-image 0.22-0.26; missing ones are skipped).
# Left out: drawings, charts, text scans, binary masks, and motorcycle_right (a stereo twin of motorcycle_left).
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "retina.jpg",
    "rocket.jpg",
)
SCALES = (1.0, 0.5)  # of the working long side
DEFAULT_SIZE = 384  # working long side of every source image at scale 1
NO_SKIMAGE = (
    "the default image set is scikit-image's photos, and scikit-image is not installed: pip install "
    "'nst[inspect]', or pass --images DIR (with --no-default-images to use only your folders)"
)


@dataclass(frozen=True)
class Source:
    path: Path
    image: np.ndarray  # (H, W, 3) float32 at the working long side


@dataclass(frozen=True)
class Variant:
    source: int  # index into ImageSet.sources
    mirrored: bool
    scale: float
    image: np.ndarray  # (h, w, 3) float32: the source image at `scale`, mirrored left-right if `mirrored`

    @property
    def label(self) -> str:
        return f"x{self.scale:g}" + (" mirrored" if self.mirrored else "")

    def to_source(self, box: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
        """A box in this variant's pixels -> the same region in the source image's working pixels."""
        top, left, bottom, right = box
        if self.mirrored:
            left, right = self.image.shape[1] - right, self.image.shape[1] - left
        return top / self.scale, left / self.scale, bottom / self.scale, right / self.scale


@dataclass
class ImageSet:
    sources: list[Source]
    skipped: dict[str, int] = field(default_factory=dict)  # folder -> files skipped as not readable images
    mirror: bool = True
    scales: tuple[float, ...] = SCALES

    def specs(self, min_side: int = 1) -> list[tuple[int, bool, float]]:
        """(source, mirrored, scale) of every variant: each source at each scale, as is and (if mirror) mirrored;
        those whose short side falls below min_side (the model's smallest input) are left out."""
        out = []
        for i, src in enumerate(self.sources):
            for scale in self.scales:
                if min(self._size(src, scale)) >= min_side:
                    out += [(i, False, scale)] + ([(i, True, scale)] if self.mirror else [])
        return out

    @staticmethod
    def _size(src: Source, scale: float) -> tuple[int, int]:
        return fit_long_side(*src.image.shape[:2], round(max(src.image.shape[:2]) * scale))

    def variant(self, spec: tuple[int, bool, float]) -> Variant:
        i, mirrored, scale = spec
        image = resize(self.sources[i].image, self._size(self.sources[i], scale))
        return Variant(i, mirrored, scale, np.ascontiguousarray(image[:, ::-1]) if mirrored else image)

    def describe(self) -> str:
        """One line: how many sources, scales and mirror images, and what was skipped in which folder."""
        skipped = "".join(f"; {n} non-image files skipped in {folder}" for folder, n in self.skipped.items() if n)
        mirrored = " x 2 (as is, mirrored)" if self.mirror else ""
        return f"images: {len(self.sources)} sources x {len(self.scales)} scales{mirrored}{skipped}"

    def variants(self, min_side: int = 1) -> Iterator[Variant]:
        return (self.variant(spec) for spec in self.specs(min_side))


def skimage_photos() -> list[Path]:
    """The SKIMAGE_PHOTOS present in the installed scikit-image; ImageError (naming the extra) without it."""
    try:
        import skimage
    except ImportError:
        raise ImageError(NO_SKIMAGE) from None
    data = Path(skimage.__file__).parent / "data"
    return [data / name for name in SKIMAGE_PHOTOS if (data / name).is_file()]


def folder_images(folder: Path) -> tuple[list[tuple[Path, np.ndarray]], int]:
    """The readable images directly in `folder` (sorted by name; hidden files and subfolders ignored) and how many
    other files were skipped. ImageError if the folder is missing or has no readable image."""
    if not folder.is_dir():
        raise ImageError(f"--images {folder} is not a folder; give a folder of images")
    images, skipped = [], 0
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            images.append((path, load_image(path)))
        except ImageError:
            skipped += 1
    if not images:
        what = f" ({skipped} non-image files skipped)" if skipped else ""
        raise ImageError(f"--images {folder} has no readable images{what}; give a folder with PNG/JPEG/... files")
    return images, skipped


def load_image_set(
    folders: Sequence[Path] = (),
    *,
    default_images: bool = True,
    size: int = DEFAULT_SIZE,
    mirror: bool = True,
    scales: Sequence[float] = SCALES,
) -> ImageSet:
    """scikit-image's photos (if default_images) plus the images in `folders`, each resized to long side `size`."""
    if not default_images and not folders:
        raise ImageError("no images to search: pass --images DIR, or drop --no-default-images")
    loaded: list[tuple[Path, np.ndarray]] = []
    if default_images:
        # with folders, scikit-image is optional: they are enough on their own
        with contextlib.suppress(*((ImageError,) if folders else ())):
            loaded += [(p, load_image(p)) for p in skimage_photos()]
    skipped: dict[str, int] = {}
    for folder in folders:
        images, skipped[str(folder)] = folder_images(Path(folder))
        loaded += images
    if not loaded:
        raise ImageError("scikit-image is installed but none of its photos were found; pass --images DIR")
    sources = [Source(p, resize(img, fit_long_side(*img.shape[:2], size))) for p, img in loaded]
    return ImageSet(sources, skipped, mirror, tuple(scales))
