#!/usr/bin/env python3
"""Pixel statistics of PNG files, for tests/report/test_png_export.cpp, with the standard library only (a PNG
decoder of our own: zlib, then the five scanline filters). For each file prints one line:
    WIDTH HEIGHT COLOURS DARK
COLOURS: distinct RGB colours; DARK: pixels whose red, green and blue are all below 100 (text and axis lines on a
white background). Handles what rsvg-convert writes: 8-bit RGB or RGBA, not interlaced."""
import struct
import sys
import zlib


def decode(path):
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise SystemExit(f'{path}: not a PNG (bad signature)')
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b'IHDR':
            header = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat.append(body)
        elif kind == b'IEND':
            break
    width, height, depth, ctype, _, _, interlace = header
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise SystemExit(f'{path}: unsupported PNG (depth {depth}, colour type {ctype}, interlace {interlace})')
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b''.join(idat))
    stride = width * bpp
    prev = bytes(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(bpp):
                line[i] = (line[i] + (prev[i] >> 1)) & 255
            for i in range(bpp, stride):
                line[i] = (line[i] + ((line[i - bpp] + prev[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(bpp):  # no left neighbour: the predictor is the byte above
                line[i] = (line[i] + prev[i]) & 255
            for i in range(bpp, stride):
                a, b, c = line[i - bpp], prev[i], prev[i - bpp]
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - c - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif kind != 0:
            raise SystemExit(f'{path}: bad filter type {kind} in row {y}')
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def main():
    for path in sys.argv[1:]:
        width, height, bpp, rows = decode(path)
        colours, dark = set(), 0
        below = bytes(1 if v < 100 else 0 for v in range(256))  # byte -> is it dark
        for line in rows:
            r, g, b = line[0::bpp], line[1::bpp], line[2::bpp]
            colours.update(zip(r, g, b))
            dark_bits = (int.from_bytes(r.translate(below), 'big') & int.from_bytes(g.translate(below), 'big') &
                         int.from_bytes(b.translate(below), 'big'))
            dark += bin(dark_bits).count('1')
        print(width, height, len(colours), dark)


if __name__ == '__main__':
    main()
