/// Conversions between the three floating-point types lorastore computes on: F32, F16 and BF16.
///
/// Storage is little-endian, as in safetensors files, and buffers need no particular alignment (every
/// access is an unaligned load or store). Narrowing conversions round to nearest, ties to even, so a value
/// is rounded exactly once when it leaves F32. NaN stays NaN (made quiet) and infinities stay infinite.
///
/// F16 goes through Swift's `Float16`, which compiles to the F16C instructions (`vcvtph2ps`/`vcvtps2ph`)
/// when the module is built for Haswell or later; BF16 is bit arithmetic on 8 lanes at a time.
public enum FloatConversion {
    /// Thrown by ``convert(_:from:to:as:count:)`` for a type other than F32, F16 or BF16.
    public struct UnsupportedType: Error, Equatable, Sendable {
        /// The type that cannot be converted.
        public let dtype: DType

        /// Creates the error for `dtype`.
        public init(dtype: DType) {
            self.dtype = dtype
        }
    }

    // MARK: Single values

    /// The F32 value of a BF16 bit pattern (exact: BF16 is the upper half of an F32).
    @inlinable
    public static func float(fromBFloat16 bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// The BF16 bit pattern nearest to `value`, ties to even; NaN becomes a quiet NaN of the same sign.
    @inlinable
    public static func bfloat16(from value: Float) -> UInt16 {
        let bits = value.bitPattern
        if bits & 0x7FFF_FFFF > 0x7F80_0000 {
            return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        }
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// The F32 value of an F16 bit pattern (exact).
    @inlinable
    public static func float(fromFloat16 bits: UInt16) -> Float {
        Float(Float16(bitPattern: bits))
    }

    /// The F16 bit pattern nearest to `value`, ties to even; overflow gives infinity, NaN stays NaN.
    @inlinable
    public static func float16(from value: Float) -> UInt16 {
        Float16(value).bitPattern
    }

    // MARK: Buffers

    /// Widens `count` BF16 values at `source` to F32 at `destination`.
    public static func bfloat16ToFloat(_ source: UnsafeRawPointer, _ destination: UnsafeMutableRawPointer, count: Int) {
        convertLanes(source, BFloat16Lanes.self, destination, Float32Lanes.self, count: count)
    }

    /// Narrows `count` F32 values at `source` to BF16 at `destination`, rounding to nearest even.
    public static func floatToBFloat16(_ source: UnsafeRawPointer, _ destination: UnsafeMutableRawPointer, count: Int) {
        convertLanes(source, Float32Lanes.self, destination, BFloat16Lanes.self, count: count)
    }

    /// Widens `count` F16 values at `source` to F32 at `destination`.
    public static func float16ToFloat(_ source: UnsafeRawPointer, _ destination: UnsafeMutableRawPointer, count: Int) {
        convertLanes(source, Float16Lanes.self, destination, Float32Lanes.self, count: count)
    }

    /// Narrows `count` F32 values at `source` to F16 at `destination`, rounding to nearest even.
    public static func floatToFloat16(_ source: UnsafeRawPointer, _ destination: UnsafeMutableRawPointer, count: Int) {
        convertLanes(source, Float32Lanes.self, destination, Float16Lanes.self, count: count)
    }

    /// Converts `count` elements of type `sourceType` at `source` to `destinationType` at `destination`.
    ///
    /// F16 ↔ BF16 passes through F32 (exact widening, then one rounding). Equal types are a plain copy.
    /// The buffers must not overlap unless they are the same buffer and the types have equal widths.
    /// - Throws: ``UnsupportedType`` when either type is not F32, F16 or BF16.
    public static func convert(
        _ source: UnsafeRawPointer, from sourceType: DType,
        to destination: UnsafeMutableRawPointer, as destinationType: DType,
        count: Int
    ) throws {
        switch sourceType {
        case .f32: try convert(source, Float32Lanes.self, destination, destinationType, count: count)
        case .f16: try convert(source, Float16Lanes.self, destination, destinationType, count: count)
        case .bf16: try convert(source, BFloat16Lanes.self, destination, destinationType, count: count)
        default: throw UnsupportedType(dtype: sourceType)
        }
    }

    private static func convert<In: Lanes>(
        _ source: UnsafeRawPointer, _ sourceLanes: In.Type,
        _ destination: UnsafeMutableRawPointer, _ destinationType: DType, count: Int
    ) throws {
        switch destinationType {
        case .f32: convertLanes(source, In.self, destination, Float32Lanes.self, count: count)
        case .f16: convertLanes(source, In.self, destination, Float16Lanes.self, count: count)
        case .bf16: convertLanes(source, In.self, destination, BFloat16Lanes.self, count: count)
        default: throw UnsupportedType(dtype: destinationType)
        }
    }

    private static func convertLanes<In: Lanes, Out: Lanes>(
        _ source: UnsafeRawPointer, _: In.Type, _ destination: UnsafeMutableRawPointer, _: Out.Type, count: Int
    ) {
        if In.self == Out.self {
            if source != UnsafeRawPointer(destination) {
                destination.copyMemory(from: source, byteCount: count * In.byteWidth)
            }
            return
        }
        var index = 0
        while index + 8 <= count {
            _ = Out.store(In.load(source, index), destination, index)
            index += 8
        }
        while index < count {
            _ = Out.storeScalar(In.loadScalar(source, index), destination, index)
            index += 1
        }
    }
}

extension FloatConversion {
    /// Element access for one storage type, 8 lanes at a time or one element, always through F32.
    ///
    /// The merge kernel is generic over two of these (input and output type) so each combination is
    /// specialised into straight-line SIMD code. `store` returns the stored values widened back to F32,
    /// so callers can check what was actually written (overflow on narrowing included) for finiteness.
    protocol Lanes: SendableMetatype {
        static var byteWidth: Int { get }
        static func load(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float>
        static func store(_ value: SIMD8<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) -> SIMD8<Float>
        static func loadScalar(_ base: UnsafeRawPointer, _ index: Int) -> Float
        static func storeScalar(_ value: Float, _ base: UnsafeMutableRawPointer, _ index: Int) -> Float
    }

    enum Float32Lanes: Lanes {
        static var byteWidth: Int { 4 }

        @inline(__always)
        static func load(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
            base.loadUnaligned(fromByteOffset: index &* 4, as: SIMD8<Float>.self)
        }

        @inline(__always)
        static func store(_ value: SIMD8<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) -> SIMD8<Float> {
            base.storeBytes(of: value, toByteOffset: index &* 4, as: SIMD8<Float>.self)
            return value
        }

        @inline(__always)
        static func loadScalar(_ base: UnsafeRawPointer, _ index: Int) -> Float {
            base.loadUnaligned(fromByteOffset: index &* 4, as: Float.self)
        }

        @inline(__always)
        static func storeScalar(_ value: Float, _ base: UnsafeMutableRawPointer, _ index: Int) -> Float {
            base.storeBytes(of: value, toByteOffset: index &* 4, as: Float.self)
            return value
        }
    }

    enum Float16Lanes: Lanes {
        static var byteWidth: Int { 2 }

        /// Lane-by-lane conversions (rather than the generic SIMD initialisers, which the optimiser may
        /// leave as out-of-line calls) compile to single `vcvtph2ps`/`vcvtps2ph` instructions.
        @inline(__always)
        static func widen(_ h: SIMD8<Float16>) -> SIMD8<Float> {
            SIMD8<Float>(
                Float(h[0]), Float(h[1]), Float(h[2]), Float(h[3]),
                Float(h[4]), Float(h[5]), Float(h[6]), Float(h[7]))
        }

        @inline(__always)
        static func load(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
            widen(base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<Float16>.self))
        }

        @inline(__always)
        static func store(_ value: SIMD8<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) -> SIMD8<Float> {
            let narrowed = SIMD8<Float16>(
                Float16(value[0]), Float16(value[1]), Float16(value[2]), Float16(value[3]),
                Float16(value[4]), Float16(value[5]), Float16(value[6]), Float16(value[7]))
            base.storeBytes(of: narrowed, toByteOffset: index &* 2, as: SIMD8<Float16>.self)
            return widen(narrowed)
        }

        @inline(__always)
        static func loadScalar(_ base: UnsafeRawPointer, _ index: Int) -> Float {
            Float(base.loadUnaligned(fromByteOffset: index &* 2, as: Float16.self))
        }

        @inline(__always)
        static func storeScalar(_ value: Float, _ base: UnsafeMutableRawPointer, _ index: Int) -> Float {
            let narrowed = Float16(value)
            base.storeBytes(of: narrowed, toByteOffset: index &* 2, as: Float16.self)
            return Float(narrowed)
        }
    }

    enum BFloat16Lanes: Lanes {
        static var byteWidth: Int { 2 }

        /// Widening and narrowing are written lane by lane (rather than with the generic
        /// `init(truncatingIfNeeded:)`, which the optimiser may leave as an out-of-line call); they still
        /// compile to `vpmovzxwd` and a shift, and to a pack.
        @inline(__always)
        static func load(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
            let h = base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<UInt16>.self)
            let wide = SIMD8<UInt32>(
                UInt32(h[0]), UInt32(h[1]), UInt32(h[2]), UInt32(h[3]),
                UInt32(h[4]), UInt32(h[5]), UInt32(h[6]), UInt32(h[7]))
            return unsafeBitCast(wide &<< 16, to: SIMD8<Float>.self)
        }

        /// Round to nearest even by adding 0x7FFF plus the kept LSB; NaN lanes (|bits| > 0x7F800000) are
        /// selected with an arithmetic-shift mask instead of a SIMD comparison, which Swift scalarises.
        @inline(__always)
        static func store(_ value: SIMD8<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) -> SIMD8<Float> {
            let bits = unsafeBitCast(value, to: SIMD8<UInt32>.self)
            let rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) &>> 16
            let quiet = (bits &>> 16) | 0x0040
            let magnitude = unsafeBitCast(bits & 0x7FFF_FFFF, to: SIMD8<Int32>.self)
            let nanMask = unsafeBitCast((0x7F80_0000 &- magnitude) &>> 31, to: SIMD8<UInt32>.self)
            let result = (rounded & ~nanMask) | (quiet & nanMask)
            let narrowed = SIMD8<UInt16>(
                UInt16(truncatingIfNeeded: result[0]), UInt16(truncatingIfNeeded: result[1]),
                UInt16(truncatingIfNeeded: result[2]), UInt16(truncatingIfNeeded: result[3]),
                UInt16(truncatingIfNeeded: result[4]), UInt16(truncatingIfNeeded: result[5]),
                UInt16(truncatingIfNeeded: result[6]), UInt16(truncatingIfNeeded: result[7]))
            base.storeBytes(of: narrowed, toByteOffset: index &* 2, as: SIMD8<UInt16>.self)
            return unsafeBitCast(result &<< 16, to: SIMD8<Float>.self)
        }

        @inline(__always)
        static func loadScalar(_ base: UnsafeRawPointer, _ index: Int) -> Float {
            FloatConversion.float(fromBFloat16: base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self))
        }

        @inline(__always)
        static func storeScalar(_ value: Float, _ base: UnsafeMutableRawPointer, _ index: Int) -> Float {
            let narrowed = FloatConversion.bfloat16(from: value)
            base.storeBytes(of: narrowed, toByteOffset: index &* 2, as: UInt16.self)
            return FloatConversion.float(fromBFloat16: narrowed)
        }
    }
}
