"""Small valid images for the emulators and the stand-in newsroom site (no image library needed)."""

from __future__ import annotations

import base64
import struct
import zlib

# A 64x36 baseline JPEG (a blue card with a white bar), made once with an image library.
SAMPLE_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdBRkxOUlNSMj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT0//wAARCAAkAEADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDAoor2SvUrVvZW0vc82lS9pfU8bor2SisPrn938Tb6p5njdFeyUUfXP7v4h9U8zxuivZK8n1n/AJDd/wD9fMn/AKEa2o1/aNqxlVo+zV7lOvZK8brvv+E30z/nhef98L/8VUYqEpW5UXhpxje7Omormf8AhN9M/wCeF5/3wv8A8VR/wm+mf88Lz/vhf/iq5PYVOx1e2h3Omormf+E30z/nhef98L/8VR/wm+mf88Lz/vhf/iqPYVOwe2h3OmryfWf+Q3f/APXzJ/6Ea7L/AITfTP8Anhef98L/APFVxGoTrc6jc3EYISWV3UN1AJJ5rqwtOUW+ZHNiJxklZkFFFFdhyhRRRQAUUUUAFFFFAH//2Q=="
)


def make_png(width: int = 64, height: int = 36, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A solid-colour RGB PNG of the given size (used to test size limits with large dimensions too)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height, 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def image_for(path: str) -> tuple[bytes, str]:
    """An image whose type follows the path's extension (.png -> PNG, anything else -> JPEG)."""
    if path.lower().endswith(".png"):
        return make_png(), "image/png"
    return SAMPLE_JPEG, "image/jpeg"
