#!/usr/bin/env python3
"""Draws kettle's kernelspec logos (logo-32x32.png, logo-64x64.png) next to this script.

Run once by hand when the drawing changes; the PNGs are committed so that building the kernel
needs no Python. Standard library only: shapes are tested per sub-pixel (4x4 supersampling for
smooth edges) and the image is written as an RGBA PNG with zlib.
"""
import math
import os
import struct
import zlib

COPPER = (200, 85, 61)
DARK = (92, 38, 28)
SHINE = (255, 226, 200)
STEAM = (150, 160, 170)


def ellipse(cx, cy, rx, ry):
    return lambda x, y: ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def rect(x0, y0, x1, y1):
    return lambda x, y: x0 <= x <= x1 and y0 <= y <= y1


def segment(ax, ay, bx, by, half_width):
    def inside(x, y):
        dx, dy = bx - ax, by - ay
        t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
        return math.hypot(x - (ax + t * dx), y - (ay + t * dy)) <= half_width
    return inside


def upper_ring(cx, cy, r, half_width):
    return lambda x, y: y <= cy and abs(math.hypot(x - cx, y - cy) - r) <= half_width


def both(a, b):
    return lambda x, y: a(x, y) and b(x, y)


# Back to front, in a unit square with y pointing down.
LAYERS = [
    (upper_ring(0.52, 0.50, 0.24, 0.04), DARK),  # handle
    (segment(0.30, 0.66, 0.10, 0.44, 0.055), COPPER),  # spout
    (both(ellipse(0.54, 0.64, 0.32, 0.27), rect(0, 0, 1, 0.86)), COPPER),  # body, flat base
    (rect(0.30, 0.83, 0.78, 0.89), DARK),  # foot
    (ellipse(0.54, 0.39, 0.15, 0.045), DARK),  # lid
    (ellipse(0.54, 0.33, 0.05, 0.045), DARK),  # knob
    (ellipse(0.66, 0.55, 0.07, 0.045), SHINE),  # highlight
    (upper_ring(0.12, 0.30, 0.06, 0.018), STEAM),  # steam
    (upper_ring(0.20, 0.20, 0.05, 0.016), STEAM),
]


def draw(size, samples=4):
    rows = []
    for py in range(size):
        row = bytearray()
        for px in range(size):
            r = g = b = covered = 0
            for sy in range(samples):
                for sx in range(samples):
                    x = (px + (sx + 0.5) / samples) / size
                    y = (py + (sy + 0.5) / samples) / size
                    colour = None
                    for inside, c in LAYERS:
                        if inside(x, y):
                            colour = c
                    if colour:
                        r, g, b, covered = r + colour[0], g + colour[1], b + colour[2], covered + 1
            if covered:
                row += bytes((r // covered, g // covered, b // covered, 255 * covered // samples**2))
            else:
                row += bytes(4)
        rows.append(row)
    return rows


def png(rows, size):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(row) for row in rows)  # filter type 0 on every scanline
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    for size in (32, 64):
        path = os.path.join(here, f"logo-{size}x{size}.png")
        with open(path, "wb") as f:
            f.write(png(draw(size), size))
        print("wrote", path)
