"""Context images uploaded from the page: validated, size-limited, decoded to the model's frames.

The page sends each file as a data URL (`data:image/png;base64,...`) inside one websocket message. Nothing is
written to disk. Each image must be a PNG/JPEG/GIF/WebP/BMP of at most MAX_IMAGE_BYTES bytes and
MAX_IMAGE_SIDE pixels a side (checked from the header, before the pixels are decoded: no decompression
bombs); it is converted to RGB and resized to S x S (area averaging, as the real envs' frames are). Fewer
than K images are padded at the front with copies of the first (a context that stood still before it).
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np

MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_IMAGE_SIDE = 4096
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")


def decode_image(data: str, frame_size: int, what: str = "image") -> np.ndarray:
    """A data URL or bare base64 string -> uint8 [S, S, 3]; ValueError naming what is wrong."""
    from PIL import Image, UnidentifiedImageError

    from vidworld.envs.pixels import resize_frame

    if not isinstance(data, str):
        raise ValueError(f"{what}: expected a data URL string (data:image/png;base64,...), got {type(data).__name__}")
    if data.startswith("data:"):
        header, sep, data = data.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ValueError(f"{what}: expected a base64 data URL (data:image/...;base64,...)")
    if len(data) > (MAX_IMAGE_BYTES * 4) // 3 + 4:
        raise ValueError(f"{what}: larger than the {MAX_IMAGE_BYTES // (1024 * 1024)} MB limit for a context image")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what}: not valid base64") from None
    try:
        with Image.open(io.BytesIO(raw), formats=FORMATS) as img:
            w, h = img.size
            if w > MAX_IMAGE_SIDE or h > MAX_IMAGE_SIDE:
                raise ValueError(f"{what}: {w}x{h} pixels; context images may be at most {MAX_IMAGE_SIDE} a side")
            rgb = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise ValueError(f"{what}: not a readable image; expected one of {', '.join(FORMATS)}") from None
    return resize_frame(rgb, frame_size)


def decode_context(images: list, context_length: int, frame_size: int) -> np.ndarray:
    """1..K uploaded images -> uint8 [K, S, S, 3] (padded at the front with the first image)."""
    K = context_length
    if not isinstance(images, list) or not 1 <= len(images) <= K:
        got = len(images) if isinstance(images, list) else type(images).__name__
        raise ValueError(f"upload: give 1..{K} context images (the model's context_length is {K}), got {got}")
    frames = [decode_image(img, frame_size, f"image {i + 1}") for i, img in enumerate(images)]
    frames = [frames[0]] * (K - len(frames)) + frames
    return np.stack(frames)
