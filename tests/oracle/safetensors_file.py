"""Reading a safetensors file by hand, for the test oracles (torch_model.py, analysis_oracle.py): no dependency on
the engine or on the safetensors package, every field checked on open, errors that name the file and tensor."""
import json
import math

import numpy as np


class OracleError(Exception):
    """An inconsistency in an oracle's inputs; the oracle's main() prints it and exits 1."""


DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
              "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}
DTYPE_NUMPY = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
               "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
MAX_HEADER = 100 * 1024 * 1024


class SafetensorsFile:
    """A whole safetensors file in memory, validated entirely on open."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise OracleError(f"file {path}: cannot read: {e.strerror}")
        if len(raw) < 8:
            raise OracleError(f"file {path}: {len(raw)} bytes, too short for a safetensors header")
        n = int.from_bytes(raw[:8], "little")
        if n > len(raw) - 8 or n > MAX_HEADER:
            raise OracleError(f"file {path}: header length {n} exceeds the file ({len(raw)} bytes)")
        try:
            header = json.loads(raw[8:8 + n].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise OracleError(f"file {path}: header is not valid JSON: {e}")
        if not isinstance(header, dict):
            raise OracleError(f"file {path}: header is not a JSON object")
        self.metadata = header.pop("__metadata__", {}) or {}
        self._data = memoryview(raw)[8 + n:]
        self.entries = {}
        spans = []
        for name, e in header.items():
            where = f"file {path}: tensor '{name}'"
            if not isinstance(e, dict) or not {"dtype", "shape", "data_offsets"} <= e.keys():
                raise OracleError(f"{where}: expected an object with dtype, shape and data_offsets")
            dtype, shape, offs = e["dtype"], e["shape"], e["data_offsets"]
            if dtype not in DTYPE_SIZE:
                raise OracleError(f"{where}: unknown dtype {dtype!r}")
            if not isinstance(shape, list) or not all(is_int(d) and d >= 0 for d in shape):
                raise OracleError(f"{where}: shape {shape!r} is not a list of non-negative integers")
            if not isinstance(offs, list) or len(offs) != 2 or not all(is_int(o) for o in offs):
                raise OracleError(f"{where}: data_offsets {offs!r} is not a pair of integers")
            begin, end = offs
            if not 0 <= begin <= end <= len(self._data):
                raise OracleError(f"{where}: data_offsets [{begin}, {end}] outside the data section "
                                  f"of {len(self._data)} bytes")
            want = math.prod(shape) * DTYPE_SIZE[dtype]
            if end - begin != want:
                raise OracleError(f"{where}: {end - begin} data bytes, expected {want} for {dtype} {shape}")
            self.entries[name] = (dtype, tuple(shape), begin, end)
            spans.append((begin, end, name))
        spans.sort()
        for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
            if b1 < e0:
                raise OracleError(f"file {path}: tensors '{n0}' and '{n1}' overlap")

    def names(self):
        return list(self.entries)

    def read(self, name, dtype, shape):
        """The tensor as a numpy array, checking that it exists with this dtype and shape."""
        if name not in self.entries:
            raise OracleError(f"file {self.path}: missing tensor '{name}'")
        found_dtype, found_shape, begin, end = self.entries[name]
        if found_dtype != dtype:
            raise OracleError(f"file {self.path}: tensor '{name}': expected {dtype}, found {found_dtype}")
        if shape is not None and tuple(shape) != found_shape:
            raise OracleError(f"file {self.path}: tensor '{name}': expected shape {list(shape)}, "
                              f"found {list(found_shape)}")
        return np.frombuffer(self._data[begin:end], dtype=DTYPE_NUMPY[dtype]).reshape(found_shape).copy()


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)
