"""Citizens' photos from the report form: taken for what they are, and stripped.

A file is an image only if Pillow can decode it as JPEG, PNG, WebP or GIF, whatever its
name or declared type. It is decoded and drawn again as a new JPEG — turned upright by
its orientation tag first, at most :data:`MAX_SIDE` pixels on its long side — so
nothing the phone wrote into it (EXIF with the GPS position, XMP, comments, colour
profiles, thumbnails) survives. Stored like every file the product keeps
(:mod:`contact.media`): content-addressed under ``MEDIA_DIR``, written atomically.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from contact.media import media_path, store_file

MAX_BYTES = 8 * 1024 * 1024
MAX_PHOTOS = 3
# A phone's 50-megapixel JPEG decodes (at a reduced scale, see below); a decompression
# bomb does not. Other formats decode at full size, so they get less room.
MAX_PIXELS = 50_000_000
MAX_PIXELS_UNSCALED = 20_000_000
MAX_SIDE = 2560
FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF"})  # MPO: JPEG with extra frames
DECODERS = ("JPEG", "PNG", "WEBP", "GIF")
CONTENT_TYPE = "image/jpeg"


class NotAPhoto(ValueError):
    """Not an image we can read (or a hostile one)."""


@dataclass(frozen=True)
class Photo:
    data: bytes
    sha256: str
    width: int
    height: int


def clean_photo(raw: bytes) -> Photo:
    """Decode ``raw`` and encode it again as a plain JPEG; raises :class:`NotAPhoto`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=DECODERS) as img:
                if img.format not in FORMATS:
                    raise NotAPhoto(f"format {img.format}")
                width, height = img.size
                jpeg = img.format in ("JPEG", "MPO")
                limit = MAX_PIXELS if jpeg else MAX_PIXELS_UNSCALED
                if width * height > limit or min(width, height) < 1:
                    raise NotAPhoto(f"{width}x{height} pixels")
                img.seek(0)  # the first frame of an animation
                if jpeg:  # decode at the smallest DCT scale still at least MAX_SIDE wide
                    img.draft("RGB", (MAX_SIDE, MAX_SIDE))
                img.load()
                upright = ImageOps.exif_transpose(img)
                picture = _flatten(upright)
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        ValueError,
        SyntaxError,  # raised by some of Pillow's decoders on garbled files
        EOFError,
    ) as exc:
        if isinstance(exc, NotAPhoto):
            raise
        raise NotAPhoto(type(exc).__name__) from None
    picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85, optimize=True)  # no exif=, icc_profile=: none kept
    data = out.getvalue()
    return Photo(data, sha256(data).hexdigest(), picture.width, picture.height)


def _flatten(img: Image.Image) -> Image.Image:
    """RGB pixels only: transparency painted on white, palettes and greys expanded."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")


def store(media_dir: Path, photo: Photo) -> str:
    """Write the photo under ``media_dir`` (once per content); its path relative to it."""
    final = media_path(media_dir, photo.sha256, "jpg")
    store_file(final, photo.data)
    return final.relative_to(media_dir).as_posix()
