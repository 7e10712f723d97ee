import Foundation
import LoraStoreCore

/// One tensor the codec group compresses: generated weights of a type, or weights from a file on the machine.
struct CodecSample {
    /// How the results name it: the type, then the source for real weights.
    let label: String
    let dtype: DType
    /// Raw little-endian values, owned by the sample until ``deallocate()``.
    let bytes: UnsafeMutableRawBufferPointer
    /// Where the values come from, for the method text.
    let origin: String

    /// `size` bytes of N(0, 0.02) weights generated in F32 and rounded to `dtype`, seeded by the type.
    static func generated(_ dtype: DType, size: Int) throws -> CodecSample {
        let width = dtype.byteWidth ?? 1
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size / width * width, alignment: 64)
        try SyntheticRandom.fill(
            buffer, dtype: dtype, distribution: .normal(mean: 0, standardDeviation: 0.02),
            seed: SyntheticRandom.derive(42, "codec-\(dtype.rawValue)"))
        return CodecSample(
            label: dtype.rawValue, dtype: dtype, bytes: buffer, origin: "generated N(0, 0.02), \(Format.bytes(size))")
    }

    /// Writes the values to `file`, for ZipNN's script.
    func write(to file: URL) throws {
        let handle = try WritableFile(creating: file.path)
        try handle.write(UnsafeRawBufferPointer(bytes))
        try handle.close()
    }

    func deallocate() {
        bytes.deallocate()
    }
}
