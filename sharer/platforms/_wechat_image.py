"""Cover crops for WeChat: the image's real size from its header, and centred crop boxes.

WeChat shows a cover at 2.35:1 (the feed card) and 1:1 (the share card and 多图文 side items). Left to
itself it crops as it likes; ``pic_crop_235_1`` / ``pic_crop_1_1`` ("X1_Y1_X2_Y2" in 0..1 coordinates
of the cover) say which part to keep. We keep the centre. Pure: bytes in, strings out. A small header
reader (JPEG SOF, PNG IHDR, GIF, BMP) is enough: no image library is needed to read two integers.
"""

from __future__ import annotations

import struct

RATIOS = {"pic_crop_235_1": 2.35, "pic_crop_1_1": 1.0}
# JPEG start-of-frame markers carry the size (SOF0..SOF15 except DHT C4, JPG C8, DAC CC)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG/PNG/GIF/BMP header, or None when it cannot be read."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            w, h = struct.unpack(">II", data[16:24])
        elif data[:6] in (b"GIF87a", b"GIF89a"):
            w, h = struct.unpack("<HH", data[6:10])
        elif data.startswith(b"BM"):
            w, h = struct.unpack("<ii", data[18:26])
            h = abs(h)  # negative height: a top-down bitmap
        elif data.startswith(b"\xff\xd8"):
            size = _jpeg_size(data)
            if size is None:
                return None
            w, h = size
        else:
            return None
    except struct.error:
        return None
    return (w, h) if w > 0 and h > 0 else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _SOF and i + 9 <= n:
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i += 2 + length
    return None


def centred_crop(width: int, height: int, ratio: float) -> str:
    """The largest centred box of ``ratio`` (width/height) inside the image, as "X1_Y1_X2_Y2"."""
    if width / height > ratio:  # too wide: keep the full height, cut the sides
        keep = height * ratio / width
        x1, y1, x2, y2 = (1 - keep) / 2, 0.0, (1 + keep) / 2, 1.0
    else:  # too tall: keep the full width, cut top and bottom
        keep = width / ratio / height
        x1, y1, x2, y2 = 0.0, (1 - keep) / 2, 1.0, (1 + keep) / 2
    return "_".join(_fmt(v) for v in (x1, y1, x2, y2))


def crops_for(data: bytes) -> dict[str, str]:
    """Both crop fields for a cover image, or {} when its size cannot be read (WeChat then decides)."""
    size = image_size(data)
    if size is None:
        return {}
    return {name: centred_crop(size[0], size[1], ratio) for name, ratio in RATIOS.items()}


def _fmt(v: float) -> str:
    text = f"{min(1.0, max(0.0, v)):.6f}".rstrip("0").rstrip(".")
    return text or "0"
