#!/usr/bin/env python3
"""ZipNN beside lorastore-bench: one single-threaded compression and decompression per request.

Usage: zipnn_bench.py   (lorastore-bench starts it with --zipnn-python and talks to it on stdin/stdout)

lorastore-bench alternates a round of its own codec with a round of ZipNN on the same sample, so that
both are timed over the same minutes of a machine whose speed drifts; the process stays up between
rounds so that importing zipnn (and torch, which it imports) is paid once.

The first line written is a greeting, {"status": "ok", "version": ..., "settings": ...}, or
{"status": "skipped", "reason": ...} when zipnn cannot be imported (and the script exits). Then each
request line `DTYPE PATH` (BF16, F16 or F32; PATH a file of raw little-endian values) gets one line:
{"bytes": n, "compressed": n, "compress_seconds": t, "decompress_seconds": t} after the round trip was
checked, or {"error": "..."}. Timing is wall-clock around ZipNN's compress and decompress calls only.
"""

import json
import sys
import time

ZIPNN_TYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}


def reply(message):
    print(json.dumps(message), flush=True)


def round_trip(zipnn_class, dtype, path):
    """One compression and one decompression of the file at `path` as `dtype`, timed and checked."""
    with open(path, "rb") as file:
        data = file.read()
    codec = zipnn_class(input_format="byte", bytearray_dtype=ZIPNN_TYPES[dtype], threads=1)
    # zipnn 0.5.4 reorders the sign bit of BF16 and F32 input in place (even in an immutable `bytes`), so
    # each compression gets a fresh copy, made outside the clock.
    source = bytes(bytearray(data))
    start = time.perf_counter()
    compressed = codec.compress(source)
    compress_seconds = time.perf_counter() - start
    compressed = bytes(compressed)
    source = bytes(bytearray(compressed))
    start = time.perf_counter()
    restored = codec.decompress(source)
    decompress_seconds = time.perf_counter() - start
    if bytes(restored) != data:
        return {"error": f"zipnn did not round-trip {path}"}
    return {
        "bytes": len(data),
        "compressed": len(compressed),
        "compress_seconds": compress_seconds,
        "decompress_seconds": decompress_seconds,
    }


def main():
    if len(sys.argv) != 1:
        sys.exit(__doc__)
    try:
        from importlib.metadata import version
        from zipnn import ZipNN
    except Exception as error:  # an import failure of any kind means: skipped, with the reason
        reply({"status": "skipped", "reason": f"cannot import zipnn: {error}"})
        return
    reply({
        "status": "ok",
        "version": version("zipnn"),
        "settings": "ZipNN(input_format='byte', bytearray_dtype=<type>, threads=1), other settings default",
    })
    for line in sys.stdin:
        dtype, _, path = line.rstrip("\n").partition(" ")
        if dtype not in ZIPNN_TYPES or not path:
            reply({"error": f"not a request: {line.strip()!r} (expected DTYPE PATH)"})
            continue
        try:
            reply(round_trip(ZipNN, dtype, path))
        except Exception as error:
            reply({"error": f"zipnn failed on {path}: {error}"})


if __name__ == "__main__":
    main()
