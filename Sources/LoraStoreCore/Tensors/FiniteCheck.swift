/// Finds NaN and infinite values in floating-point tensors by their bit patterns (an all-ones exponent),
/// without converting them.
public enum FiniteCheck {
    /// Whether every value of a tensor of `dtype` in `bytes` is finite. Integer types, and the 6- and 4-bit
    /// floating-point types (which have no NaN or infinity), are always finite.
    public static func allFinite(_ bytes: UnsafeRawBufferPointer, dtype: DType) -> Bool {
        switch dtype {
        case .f64: noneMatch(bytes, as: UInt64.self, mask: 0x7FF0_0000_0000_0000)
        // A complex value is two F32s, real and imaginary part.
        case .f32, .c64: noneMatch(bytes, as: UInt32.self, mask: 0x7F80_0000)
        // A pure power-of-two scale: 0xFF is its NaN.
        case .f8e8m0: !bytes.contains(0xFF)
        case .bf16: noneMatch(bytes, as: UInt16.self, mask: 0x7F80)
        case .f16: noneMatch(bytes, as: UInt16.self, mask: 0x7C00)
        case .f8e5m2: noneMatch(bytes, as: UInt8.self, mask: 0x7C)
        case .f8e4m3: !bytes.contains { $0 & 0x7F == 0x7F }
        default: true
        }
    }

    private static func noneMatch<Word: FixedWidthInteger>(
        _ bytes: UnsafeRawBufferPointer, as: Word.Type, mask: Word
    ) -> Bool {
        let count = bytes.count / MemoryLayout<Word>.size
        guard let base = bytes.baseAddress, count > 0 else { return true }
        var found: Word = 0
        for index in 0..<count {
            let word = Word(littleEndian: base.loadUnaligned(fromByteOffset: index * MemoryLayout<Word>.size, as: Word.self))
            found |= (word & mask == mask) ? 1 : 0
        }
        return found == 0
    }
}
