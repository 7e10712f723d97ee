import Dispatch
import Foundation

/// A seeded xoshiro256++ generator with a cheap approximation of the normal distribution, for synthetic
/// weights that must be generated at hundreds of MB/s and be the same on every machine.
///
/// ``normal()`` is the Irwin–Hall sum of four 24-bit uniforms, standardised: mean 0, variance 1, bounded at
/// ±2√3 (kurtosis 2.7 instead of 3). Close enough to N(0, 1) for the byte statistics that storage and codecs
/// see (sign, exponent spread, near-random mantissa), at two 64-bit draws per value.
///
/// ``fill(_:dtype:distribution:seed:)`` splits a buffer into fixed chunks, each with its own
/// stream derived from the seed, so the bytes do not depend on the number of threads.
public struct SyntheticRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// A generator whose state is expanded from `seed` with SplitMix64.
    public init(seed: UInt64) {
        var state = seed
        s0 = Self.splitMix(&state)
        s1 = Self.splitMix(&state)
        s2 = Self.splitMix(&state)
        s3 = Self.splitMix(&state)
    }

    /// The next 64 random bits (xoshiro256++).
    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = (s0 &+ s3).rotatedLeft(by: 23) &+ s0
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3.rotatedLeft(by: 45)
        return result
    }

    /// An approximately standard normal value (mean 0, variance 1, within ±2√3).
    @inline(__always)
    public mutating func normal() -> Float {
        let a = next()
        let b = next()
        let mask: UInt64 = 0xFF_FFFF
        let sum = (a & mask) + ((a >> 32) & mask) + (b & mask) + ((b >> 32) & mask)
        // Four U(0, 1) sum to mean 2 and variance 1/3; the integer sum is 2^24 times that.
        return Float(Int64(bitPattern: sum) - (1 << 25)) * Self.normalScale
    }

    /// A uniform value in [-1, 1).
    @inline(__always)
    public mutating func symmetricUniform() -> Float {
        Float(Int64(bitPattern: next() >> 40) - (1 << 23)) * 0x1p-23
    }

    /// A seed for stream `index` of `seed`: distinct indices give unrelated streams.
    public static func derive(_ seed: UInt64, _ index: UInt64) -> UInt64 {
        var state = seed ^ (index &* 0xD1B5_4A32_D192_ED03)
        return splitMix(&state)
    }

    /// A seed for the stream named `name` of `seed` (FNV-1a of the name, then ``derive(_:_:)``).
    public static func derive(_ seed: UInt64, _ name: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return derive(seed, hash)
    }

    /// The distribution of ``fill(_:dtype:distribution:seed:)``.
    public enum Distribution: Sendable, Hashable {
        /// ``normal()`` scaled: mean + standardDeviation · z.
        case normal(mean: Float, standardDeviation: Float)
        /// Uniform in [-bound, bound).
        case uniform(bound: Float)
    }

    /// Elements per independently seeded chunk of ``fill(_:dtype:distribution:seed:)``.
    static let chunkElements = 1 << 16

    /// Fills `destination` with values of `distribution` stored as `dtype` (F32, F16 or BF16, rounded to
    /// nearest even), using every core.
    ///
    /// Chunk `k` of ``chunkElements`` values comes from the stream `derive(seed, k)`, so the bytes depend on
    /// the seed and the element count only.
    /// - Throws: ``SyntheticError/unsupportedDType(_:)`` when `dtype` is not F32, F16 or BF16.
    public static func fill(
        _ destination: UnsafeMutableRawBufferPointer, dtype: DType, distribution: Distribution, seed: UInt64
    ) throws(SyntheticError) {
        guard dtype.isMergeable, let width = dtype.byteWidth else { throw .unsupportedDType(dtype) }
        guard let base = destination.baseAddress else { return }
        let count = destination.count / width
        let chunks = (count + chunkElements - 1) / chunkElements
        let target = FillTarget(base: base)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = chunk * chunkElements
            let length = min(chunkElements, count - start)
            var generator = SyntheticRandom(seed: derive(seed, UInt64(chunk)))
            let output = target.base + start * width
            if dtype == .f32 {
                generator.generate(into: output.assumingMemoryBound(to: Float.self), count: length, distribution)
                return
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: length) { scratch in
                guard let values = scratch.baseAddress else { return }
                generator.generate(into: values, count: length, distribution)
                try? FloatConversion.convert(values, from: .f32, to: output, as: dtype, count: length)
            }
        }
    }

    private mutating func generate(into values: UnsafeMutablePointer<Float>, count: Int, _ distribution: Distribution) {
        switch distribution {
        case .normal(let mean, let standardDeviation):
            for index in 0..<count { values[index] = mean + standardDeviation * normal() }
        case .uniform(let bound):
            for index in 0..<count { values[index] = bound * symmetricUniform() }
        }
    }

    /// √3 / 2^24: standardises the integer Irwin–Hall sum.
    private static let normalScale = Float(3.0.squareRoot() / 16_777_216.0)

    private static func splitMix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The destination of a fill, shared by the workers; each writes its own chunk and no other.
    private struct FillTarget: @unchecked Sendable {
        let base: UnsafeMutableRawPointer
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotatedLeft(by count: UInt64) -> UInt64 {
        (self << count) | (self >> (64 - count))
    }
}
