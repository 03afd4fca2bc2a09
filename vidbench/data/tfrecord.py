"""TFRecord files and tf.train.Example messages, read without TensorFlow.

TFRecord framing (tensorflow/core/lib/io/record_writer): per record
    uint64 length (little endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
with masked(crc) = ((crc >> 15) | (crc << 17)) + 0xA282EAD8 (mod 2^32).

The length CRC is always checked (8 bytes, free, and it is what catches a broken framing); the data CRC
is checked only with check_crc=True because CRC32C in pure Python costs ~0.2 s per MB.

tf.train.Example (tensorflow/core/example/{example,feature}.proto):
    Example { Features features = 1 }   Features { map<string, Feature> feature = 1 }
    Feature { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3 } }
    each *List { repeated <type> value = 1 }   (floats and int64s packed or not)

encode_example / write_records exist for tests and benchmarks that must produce real files.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from vidbench.errors import VidbenchError

_CRC_TABLE: list[int] = []


def _crc_table() -> list[int]:
    if not _CRC_TABLE:
        poly = 0x82F63B78  # Castagnoli, reflected
        for n in range(256):
            c = n
            for _ in range(8):
                c = (c >> 1) ^ poly if c & 1 else c >> 1
            _CRC_TABLE.append(c)
    return _CRC_TABLE


def crc32c(data: bytes) -> int:
    table, crc = _crc_table(), 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class CorruptRecord(VidbenchError):
    """A record whose framing or checksum is wrong; `offset` is its byte offset in the file."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset


def read_records(path, *, check_crc: bool = False) -> Iterator[bytes]:
    """Yield each record's payload, one at a time (memory: one record)."""
    path = Path(path)
    with open(path, "rb") as f:
        yield from _read_stream(f, str(path), check_crc)


def _read_stream(f: BinaryIO, label: str, check_crc: bool) -> Iterator[bytes]:
    start = f.tell()
    size = f.seek(0, 2)  # a length field past the end is corruption; reading it would ask for up to 2^64 bytes
    f.seek(start)
    index = 0
    while True:
        offset = f.tell()
        header = f.read(12)
        if not header:
            return
        if len(header) < 12:
            raise CorruptRecord(f"{label}: record {index} at byte {offset}: truncated header", offset)
        length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
        if masked_crc32c(length_bytes) != length_crc:
            raise CorruptRecord(f"{label}: record {index} at byte {offset}: length CRC mismatch "
                                f"(not a TFRecord file, or corrupt)", offset)
        (length,) = struct.unpack("<Q", length_bytes)
        if length > size - offset - 16:
            raise CorruptRecord(f"{label}: record {index} at byte {offset}: length {length} runs past the end of "
                                f"the file ({size} bytes; truncated or corrupt)", offset)
        data = f.read(length)
        footer = f.read(4)
        if len(data) < length or len(footer) < 4:
            raise CorruptRecord(f"{label}: record {index} at byte {offset}: truncated "
                                f"({len(data)} of {length} bytes)", offset)
        if check_crc and masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            raise CorruptRecord(f"{label}: record {index} at byte {offset}: data CRC mismatch", offset)
        yield data
        index += 1


def write_records(path, payloads) -> None:
    with open(path, "wb") as f:
        for data in payloads:
            length = struct.pack("<Q", len(data))
            f.write(length + struct.pack("<I", masked_crc32c(length)) + data
                    + struct.pack("<I", masked_crc32c(data)))


# --- protobuf wire format: just what tf.train.Example needs ---

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value): value is int for varint/fixed, bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("field runs past the end of the message")
        yield number, wire, value


def _parse_feature(buf: bytes):
    for kind, _, body in _fields(buf):
        if kind == 1:  # BytesList
            return [bytes(v) for n, w, v in _fields(body) if n == 1]
        if kind == 2:  # FloatList: packed (wire 2) or one float per field (wire 5)
            parts = [v for n, w, v in _fields(body) if n == 1]
            return np.frombuffer(b"".join(parts), dtype="<f4").copy()
        if kind == 3:  # Int64List: packed varints or one varint per field
            values = []
            for n, w, v in _fields(body):
                if n != 1:
                    continue
                if w == 0:
                    values.append(v)
                else:
                    pos = 0
                    while pos < len(v):
                        x, pos = _varint(v, pos)
                        values.append(x)
            return np.array([x - (1 << 64) if x >= 1 << 63 else x for x in values], dtype=np.int64)
    return []  # a Feature with no list set


def parse_example(buf: bytes) -> dict:
    """A serialized tf.train.Example -> {key: list[bytes] | float32 array | int64 array}."""
    out = {}
    try:
        for n, _, features in _fields(buf):
            if n != 1:
                continue
            for m, _, entry in _fields(features):
                if m != 1:
                    continue
                key, value = None, b""
                for k, _, v in _fields(entry):
                    if k == 1:
                        key = bytes(v).decode()
                    elif k == 2:
                        value = v
                out[key] = _parse_feature(value)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"not a tf.train.Example ({e})") from e
    return out


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _delimited(number: int, body: bytes) -> bytes:
    return _key(number, 2) + _encode_varint(len(body)) + body


def encode_example(features: dict) -> bytes:
    """{key: list of bytes | float array | int array} -> serialized tf.train.Example (packed numbers)."""
    entries = b""
    for key, value in features.items():
        if isinstance(value, (list, tuple)) and all(isinstance(v, bytes) for v in value):
            feature = _delimited(1, b"".join(_delimited(1, v) for v in value))
        elif np.asarray(value).dtype.kind == "f":
            feature = _delimited(2, _delimited(1, np.asarray(value, dtype="<f4").tobytes()))
        else:
            ints = b"".join(_encode_varint(int(v) & ((1 << 64) - 1)) for v in np.asarray(value).ravel())
            feature = _delimited(3, _delimited(1, ints))
        entries += _delimited(1, _delimited(1, key.encode()) + _delimited(2, feature))
    return _delimited(1, entries)
