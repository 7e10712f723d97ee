#!/usr/bin/env python3
"""ZipNN on the codec samples of lorastore-bench: compression ratio and single-thread speed.

Usage: zipnn_bench.py SAMPLES_DIR OUTPUT_JSON [REPETITIONS]

SAMPLES_DIR holds bf16.bin, f16.bin and f32.bin (raw little-endian tensors written by
`lorastore-bench --dump-samples`). Each is compressed and decompressed with ZipNN on one thread
(`threads=1`, the library's other settings left at their defaults); the best wall-clock time of
REPETITIONS runs (default 3) is kept and the round trip is checked. The JSON is read back by
`lorastore-bench --zipnn`; when zipnn cannot be imported it records why, with status "skipped".
"""

import json
import os
import sys
import time

SAMPLES = [("BF16", "bf16.bin", "bfloat16"), ("F16", "f16.bin", "float16"), ("F32", "f32.bin", "float32")]


def best_time(repetitions, body, argument):
    """The best time of `body(argument())` over `repetitions` runs; `argument` is called outside the clock."""
    best, result = float("inf"), None
    for _ in range(repetitions):
        value = argument()
        start = time.perf_counter()
        result = body(value)
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    folder, output = sys.argv[1], sys.argv[2]
    repetitions = int(sys.argv[3]) if len(sys.argv) == 4 else 3
    try:
        from importlib.metadata import version
        from zipnn import ZipNN
    except Exception as error:  # an import failure of any kind means: skipped, with the reason
        report = {"status": "skipped", "reason": f"cannot import zipnn: {error}"}
    else:
        results = []
        for dtype, name, zipnn_dtype in SAMPLES:
            with open(os.path.join(folder, name), "rb") as file:
                data = file.read()
            codec = ZipNN(input_format="byte", bytearray_dtype=zipnn_dtype, threads=1)
            # zipnn 0.5.4 reorders the sign bit of BF16 and F32 input in place (even in an immutable
            # `bytes`), so every compression gets a fresh copy, made outside the clock.
            compress_time, compressed = best_time(repetitions, codec.compress, lambda: bytes(bytearray(data)))
            compressed = bytes(compressed)
            decompress_time, restored = best_time(repetitions, codec.decompress, lambda: bytes(bytearray(compressed)))
            if bytes(restored) != data:
                sys.exit(f"zipnn did not round-trip {name}")
            row = {
                "dtype": dtype,
                "bytes": len(data),
                "ratio": len(compressed) / len(data),
                "compress_bytes_per_second": len(data) / compress_time,
                "decompress_bytes_per_second": len(data) / decompress_time,
            }
            print(f"ZipNN {dtype}: ratio {row['ratio']:.3f}, compress {row['compress_bytes_per_second'] / 1e6:.0f} MB/s, "
                  f"decompress {row['decompress_bytes_per_second'] / 1e6:.0f} MB/s", file=sys.stderr)
            results.append(row)
        report = {
            "status": "ok",
            "version": version("zipnn"),
            "settings": "ZipNN(input_format='byte', bytearray_dtype=<type>, threads=1), other settings default; "
                        f"best of {repetitions}",
            "results": results,
        }
    with open(output, "w") as file:
        json.dump(report, file, indent=2)


if __name__ == "__main__":
    main()
