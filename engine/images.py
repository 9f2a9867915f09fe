"""Image files <-> float32 arrays (H, W, 3) RGB in [0, 1]; resizing; atomic writes. Used by the CLI and the API;
the stylize core itself only sees arrays."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .errors import ImageError
from .files import atomic_write

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold, for --max-pixels
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB. Transparency is composited on white (what a viewer shows on a light page)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(a / (65535.0 if a.max() > 255 else 255.0) * 255.0 + 0.5, 0, 255).astype(np.uint8))
    elif img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(a * (255.0 if a.max() <= 1.0 else 1.0) + 0.5, 0, 255).astype(np.uint8))
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img).convert("RGB")
    return img.convert("RGB")


SUPPORTED_INPUT = "PNG, JPEG, WebP, TIFF, BMP, GIF"


def load_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as (H, W, 3) float32 RGB in [0, 1], in its displayed (EXIF) orientation.

    Any mode is accepted (grayscale, palette, CMYK, 16-bit; transparency is composited on white). Images with more
    than `max_pixels` pixels are refused before decoding (decompression bombs); None means Pillow's own limit."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"image {path} does not exist; check the path")
    if path.is_dir():
        raise ImageError(f"{path} is a directory, not an image; give an image file")
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"image {path} is an empty file; give a real image")
    except OSError as e:
        raise ImageError(f"cannot read image {path} ({e.strerror or e}); check its permissions") from None
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # the limit is checked here, on the header, with a message naming --max-pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's DecompressionBombWarning and EXIF warnings: not for stderr
            with Image.open(path) as img:
                w, h = img.size
                if limit is not None and w * h > limit:
                    raise ImageError(
                        f"image {path} is {w}x{h} = {w * h} pixels, more than --max-pixels {limit} "
                        "(a decompression-bomb guard); raise --max-pixels if you trust this file"
                    )
                img.load()
                img = ImageOps.exif_transpose(img)
                rgb = to_rgb(img)
    except ImageError:
        raise
    except PermissionError as e:
        raise ImageError(f"cannot read image {path} ({e.strerror or e}); check its permissions") from None
    except MemoryError:
        raise ImageError(f"not enough memory to decode image {path}; use a smaller image") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{path} is not an image Pillow can read; give a {SUPPORTED_INPUT} file") from None
    except Exception as e:  # Pillow's errors for truncated or corrupt files are many types (OSError, SyntaxError,
        # EOFError, struct.error, zlib.error, ValueError, ...): any failure to decode is a bad file, not a bug here.
        raise ImageError(
            f"cannot read image {path}: it is truncated or corrupt ({' '.join(str(e).split())}); "
            "re-save or replace the file"
        ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = old
    return np.asarray(rgb, dtype=np.float32) / 255.0


def load_mask(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read a mask image as (H, W) float32 grey levels in [0, 1] (ITU-R 601 luma, what Pillow's "L" mode gives; a
    transparent pixel counts as white, like load_image)."""
    rgb = load_image(path, max_pixels).astype(np.float64)
    return np.clip(rgb @ np.array([0.299, 0.587, 0.114]), 0.0, 1.0).astype(np.float32)


def resize_grey(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 -> (h, w), Lanczos in float like resize(), clipped to [0, 1]; unchanged if same size."""
    if image.shape[:2] == tuple(size):
        return image
    h, w = size
    out = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32), mode="F").resize(
        (w, h), Image.Resampling.LANCZOS
    )
    return np.clip(np.asarray(out), 0.0, 1.0).astype(np.float32)


def fit_long_side(h: int, w: int, long_side: int) -> tuple[int, int]:
    scale = long_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) float32 -> (h, w, 3), Lanczos per channel in float (no 8-bit rounding); unchanged if same size."""
    if image.shape[:2] == tuple(size):
        return image
    h, w = size
    chans = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[..., c]), mode="F").resize((w, h), Image.Resampling.LANCZOS)
        )
        for c in range(3)
    ]
    return np.clip(np.stack(chans, axis=-1), 0.0, 1.0).astype(np.float32)


def to_nchw(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> the contiguous float32 (1, 3, H, W) batch of one the network takes."""
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    if not np.isfinite(image).all():
        raise ValueError("refusing to write an image with NaN or Inf pixels")
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def check_output_path(path: str | Path) -> str:
    """The PIL format for `path`'s extension, or ImageError naming the supported ones."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ImageError(
            f"unsupported output extension {Path(path).suffix or '(none)'!r} for {path}; "
            f"use one of: {', '.join(sorted(FORMATS))}"
        )
    return fmt


def save_image(image: np.ndarray, path: str | Path) -> Path:
    """Write (H, W, 3) [0, 1] as 8-bit sRGB atomically (files.atomic_write): a reader never sees a half-written file
    and an existing file is only replaced by a complete one."""
    path = Path(path)
    fmt = check_output_path(path)
    pixels = to_uint8(image)
    extra = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    return atomic_write(path, lambda f: Image.fromarray(pixels, "RGB").save(f, format=fmt, **extra))
