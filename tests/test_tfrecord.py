"""The built-in TFRecord / tf.train.Example reader against hand-built bytes in the real formats."""

import struct

import numpy as np
import pytest

from vidbench.data.tfrecord import (
    CorruptRecord,
    crc32c,
    encode_example,
    masked_crc32c,
    parse_example,
    read_records,
    write_records,
)


def frame_record(data: bytes) -> bytes:
    """TFRecord framing written out by hand (independent of write_records)."""
    def mask(crc):
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", mask(crc32c(length))) + data + struct.pack("<I", mask(crc32c(data)))


def test_crc32c_check_values():
    # The standard CRC-32C check value (RFC 3720 / iSCSI) and a vector of 32 zero bytes.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert masked_crc32c(b"123456789") != crc32c(b"123456789")


def test_parse_hand_encoded_example():
    # Example{features{feature{key:"a" value{bytes_list{value:"xy"}}}}}, byte by byte.
    raw = bytes([0x0A, 0x0D, 0x0A, 0x0B, 0x0A, 0x01, 0x61, 0x12, 0x06, 0x0A, 0x04, 0x0A, 0x02, 0x78, 0x79])
    assert parse_example(raw) == {"a": [b"xy"]}
    # An unpacked float list (one fixed32 field per value) and a packed int64 list with a negative value.
    floats = b"".join(b"\x0d" + struct.pack("<f", v) for v in (1.5, -2.0))
    feature_f = b"\x12" + bytes([len(floats)]) + floats
    ints = b"\x0a\x0b" + b"\x07" + b"\xff" * 9 + b"\x01"  # packed: 7, -1
    feature_i = b"\x1a" + bytes([len(ints)]) + ints

    def entry(key, feature):
        body = b"\x0a" + bytes([len(key)]) + key + b"\x12" + bytes([len(feature)]) + feature
        return b"\x0a" + bytes([len(body)]) + body

    entries = entry(b"f", feature_f) + entry(b"i", feature_i)
    parsed = parse_example(b"\x0a" + bytes([len(entries)]) + entries)
    np.testing.assert_array_equal(parsed["f"], np.array([1.5, -2.0], dtype=np.float32))
    np.testing.assert_array_equal(parsed["i"], np.array([7, -1]))


def test_encode_parse_roundtrip_and_file(tmp_path):
    cameras = np.arange(15, dtype=np.float32) / 7
    payloads = [encode_example({"frames": [b"\xff\xd8jpeg%d" % i for i in range(3)], "cameras": cameras})
                for _ in range(2)]
    path = tmp_path / "0001-of-0002.tfrecord"
    path.write_bytes(b"".join(frame_record(p) for p in payloads))
    records = list(read_records(path, check_crc=True))
    assert records == payloads
    parsed = parse_example(records[1])
    assert parsed["frames"][2] == b"\xff\xd8jpeg2"
    np.testing.assert_array_equal(parsed["cameras"], cameras)
    # write_records produces exactly the hand-built framing.
    write_records(tmp_path / "b.tfrecord", payloads)
    assert (tmp_path / "b.tfrecord").read_bytes() == path.read_bytes()


def test_corrupt_records_are_reported(tmp_path):
    good = frame_record(b"payload-one") + frame_record(b"payload-two")
    bad_length = bytearray(good)
    bad_length[0] ^= 0x01
    (tmp_path / "len.tfrecord").write_bytes(bytes(bad_length))
    with pytest.raises(CorruptRecord, match=r"len\.tfrecord: record 0 at byte 0: length CRC"):
        list(read_records(tmp_path / "len.tfrecord"))

    (tmp_path / "trunc.tfrecord").write_bytes(good[:-6])
    with pytest.raises(CorruptRecord, match="record 1 .*truncated"):
        list(read_records(tmp_path / "trunc.tfrecord"))

    bad_data = bytearray(good)
    bad_data[14] ^= 0xFF  # inside the first payload
    (tmp_path / "data.tfrecord").write_bytes(bytes(bad_data))
    assert len(list(read_records(tmp_path / "data.tfrecord"))) == 2  # data CRC not checked by default
    with pytest.raises(CorruptRecord, match="data CRC"):
        list(read_records(tmp_path / "data.tfrecord", check_crc=True))


def test_not_an_example():
    with pytest.raises(ValueError, match="not a tf.train.Example"):
        parse_example(b"\x0a\xff\xff\xff")
