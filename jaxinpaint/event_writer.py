"""A minimal TensorBoard event-file writer for scalars (no TensorFlow, no torch).

tensorboardX imports torch when it is installed, and jaxinpaint must not; TensorFlow's writer
costs seconds of import for a few scalars. An event file is a TFRecord stream of `Event`
protos, and the few fields a scalar needs are written here by hand:

    Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
    Summary { repeated Value value = 1; }
    Value   { string tag = 1; float simple_value = 2; }

TFRecord framing: `uint64 len, uint32 masked_crc32c(len), data, uint32 masked_crc32c(data)`.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Mapping


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number: int, wire_type: int) -> bytes:
    return _varint((number << 3) | wire_type)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _field(number, 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, *, file_version: str = "", summary: bytes = b"") -> bytes:
    out = _field(1, 1) + struct.pack("<d", wall_time) + _field(2, 0) + _varint(step)
    if file_version:
        out += _bytes_field(3, file_version.encode())
    if summary:
        out += _bytes_field(5, summary)
    return out


def _scalar_summary(values: Mapping[str, float]) -> bytes:
    out = b""
    for tag, value in values.items():
        val = _bytes_field(1, tag.encode()) + _field(2, 5) + struct.pack("<f", float(value))
        out += _bytes_field(1, val)
    return out


class EventWriter:
    """Appends scalar summaries to `logdir/events.out.tfevents.<time>.<host>`."""

    def __init__(self, logdir: str | os.PathLike):
        os.makedirs(logdir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = os.path.join(logdir, name)
        self._file = open(self.path, "ab")  # noqa: SIM115 (kept open for the run)
        self._write(_event(time.time(), 0, file_version="brain.Event:2"))

    def _write(self, record: bytes) -> None:
        header = struct.pack("<Q", len(record))
        self._file.write(
            header
            + struct.pack("<I", _masked_crc(header))
            + record
            + struct.pack("<I", _masked_crc(record))
        )

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """One event holding every `tag: value` at `step`."""
        self._write(_event(time.time(), step, summary=_scalar_summary(values)))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """Yields `(field number, wire type, value)`; length-delimited values as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} in an event file")
        yield number, wire, value


def read_scalars(path: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """`{tag: [(step, value), ...]}` from an event file of scalar summaries."""
    out: dict[str, list[tuple[int, float]]] = {}
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        record = data[pos + 12 : pos + 12 + length]
        if len(record) < length:
            break  # a record still being written
        pos += 12 + length + 4
        step, summary = 0, b""
        for number, _, value in _fields(record):
            if number == 2:
                step = value
            elif number == 5:
                summary = value
        for _, _, value in _fields(summary):
            tag, scalar = "", None
            for number, _, v in _fields(value):
                if number == 1:
                    tag = v.decode()
                elif number == 2:
                    (scalar,) = struct.unpack("<f", v)
            if tag and scalar is not None:
                out.setdefault(tag, []).append((step, scalar))
    return out
