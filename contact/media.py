"""Files the product keeps (citizens' photos and recordings, departments' documents):
what the bytes are, by their first bytes rather than a declared type or a file name,
and where they live — content-addressed under ``MEDIA_DIR``, written atomically.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

# Every type :func:`sniff` knows and the extension it is stored with.
EXTENSIONS: dict[str, str] = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/heic": "heic",
    "audio/amr": "amr",
    "audio/mpeg": "mp3",
    "video/mp4": "mp4",
}

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_MP4_BRANDS = {
    b"isom",
    b"iso2",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"M4V ",
    b"MSNV",
    b"dash",
    b"mmp4",
}


def sniff(head: bytes) -> str | None:
    """The type the file's first bytes show (of those the product stores), or None."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"#!AMR\n"):
        return "audio/amr"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIC_BRANDS:
            return "image/heic"
        if brand in _MP4_BRANDS:
            return "video/mp4"
        return None
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    # An MPEG audio frame: 11 sync bits, a version that is not reserved, a layer.
    if len(head) >= 3 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        version, layer, bitrate = (head[1] >> 3) & 3, (head[1] >> 1) & 3, head[2] >> 4
        if version != 1 and layer != 0 and bitrate != 0xF:
            return "audio/mpeg"
    return None


def media_path(media_dir: Path, digest: str, extension: str) -> Path:
    """Where content-addressed bytes live: ``<dir>/<sha256[:2]>/<sha256>.<ext>``."""
    return media_dir / digest[:2] / f"{digest}.{extension}"


def store_file(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` atomically (temp file in the same directory, rename)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() and final.stat().st_size == len(data):
        return  # content-addressed: the same bytes are already there
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
