/// How ``ExponentCodec`` splits the elements of a floating-point tensor into an entropy-coded symbol and raw bits.
///
/// The symbol is the exponent with the top mantissa bits below it; the residue is the sign with the remaining
/// mantissa bits. For weights the exponent carries almost all the redundancy, and the top mantissa bits some
/// more (within one binade a bell curve is far from flat), while the sign and the low mantissa bits are close to
/// random and cost less stored than coded. Each residue is a whole number of nibbles so that both passes stay
/// simple, branch-free loops the compiler vectorizes.
///
/// | layout | element bits             | symbol (coded)            | residue (stored)             |
/// |--------|--------------------------|---------------------------|------------------------------|
/// | BF16   | sign, 8 exp, 7 mantissa  | bits 3–14: exp + 4 top    | sign + bits 0–2: one nibble  |
/// | F16    | sign, 5 exp, 10 mantissa | bits 7–14: exp + 3 top    | sign + bits 0–6: one byte    |
/// | F32    | sign, 8 exp, 23 mantissa | bits 19–30: exp + 4 top   | sign + bits 0–18: u16 + nibble |
public enum FloatLayout: UInt8, Sendable, Hashable, CaseIterable {
    case bf16 = 1
    case f16 = 2
    case f32 = 3

    /// The layout for `dtype`, or `nil` when the codec does not handle it.
    public init?(_ dtype: DType) {
        switch dtype {
        case .bf16: self = .bf16
        case .f16: self = .f16
        case .f32: self = .f32
        default: return nil
        }
    }

    /// Bytes per element.
    var width: Int { self == .f32 ? 4 : 2 }

    /// Bits of mantissa below the symbol (the residue holds these and the sign).
    var lowBits: Int {
        switch self {
        case .bf16: 3
        case .f16: 7
        case .f32: 19
        }
    }

    /// Bits in a symbol: everything between the low bits and the sign.
    var symbolBits: Int { width * 8 - 1 - lowBits }

    /// Mantissa bits in the symbol, which ``ANSCode`` may escape for rare exponents.
    var mantissaBits: Int { self == .f16 ? 3 : 4 }

    /// Bytes of residue for `count` elements: nibbles are packed two to a byte, low nibble first.
    func residueSize(_ count: Int) -> Int {
        switch self {
        case .bf16: (count + 1) / 2
        case .f16: count
        case .f32: 2 * count + (count + 1) / 2
        }
    }
}

// MARK: - Split and merge

extension FloatLayout {
    /// The residue planes of a tensor of `count` elements, starting at `base`: the byte or u16 plane of the low
    /// bits (F16, F32) and the nibble plane (BF16, F32).
    struct Residue {
        let wide: UnsafeMutableRawPointer?
        let nibbles: UnsafeMutableRawPointer?

        init(layout: FloatLayout, base: UnsafeMutableRawPointer, count: Int) {
            switch layout {
            case .bf16: (wide, nibbles) = (nil, base)
            case .f16: (wide, nibbles) = (base, nil)
            case .f32: (wide, nibbles) = (base, base + 2 * count)
            }
        }
    }

    /// Splits elements `first..<first + count` of `source` into `symbols` (indexed from `first`' position 0) and
    /// the residue planes, and counts every symbol value in `histogram`. `first` is even.
    func split(
        _ source: UnsafeRawPointer, first: Int, count: Int, symbols: UnsafeMutablePointer<UInt16>,
        residue: Residue, histogram: UnsafeMutablePointer<Int>
    ) {
        switch self {
        case .bf16:
            let nibbles = residue.nibbles.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self) + first / 2
            for index in 0..<count {
                let element = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: (first &+ index) &* 2, as: UInt16.self))
                let symbol = (element &>> 3) & 0xFFF
                symbols[index] = symbol
                histogram[Int(symbol)] &+= 1
                let nibble = UInt8(truncatingIfNeeded: (element & 7) | (element &>> 12) & 8)
                if index & 1 == 0 { nibbles[index &>> 1] = nibble } else { nibbles[index &>> 1] |= nibble &<< 4 }
            }
        case .f16:
            let bytes = residue.wide.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self) + first
            for index in 0..<count {
                let element = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: (first &+ index) &* 2, as: UInt16.self))
                let symbol = (element &>> 7) & 0xFF
                symbols[index] = symbol
                histogram[Int(symbol)] &+= 1
                bytes[index] = UInt8(truncatingIfNeeded: (element & 0x7F) | (element &>> 8) & 0x80)
            }
        case .f32:
            let low = residue.wide.unsafelyUnwrapped + first * 2
            let nibbles = residue.nibbles.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self) + first / 2
            for index in 0..<count {
                let element = UInt32(littleEndian: source.loadUnaligned(fromByteOffset: (first &+ index) &* 4, as: UInt32.self))
                let symbol = UInt16(truncatingIfNeeded: (element &>> 19) & 0xFFF)
                symbols[index] = symbol
                histogram[Int(symbol)] &+= 1
                low.storeBytes(of: UInt16(truncatingIfNeeded: element).littleEndian, toByteOffset: index &* 2, as: UInt16.self)
                let nibble = UInt8(truncatingIfNeeded: (element &>> 16) & 7 | (element &>> 28) & 8)
                if index & 1 == 0 { nibbles[index &>> 1] = nibble } else { nibbles[index &>> 1] |= nibble &<< 4 }
            }
        }
    }

    /// Rebuilds elements `first..<first + count` into `destination` (which points at element `first`) from their
    /// `symbols` and the residue planes. `first` is even.
    func merge(
        symbols: UnsafePointer<UInt16>, residue: Residue, first: Int, count: Int,
        into destination: UnsafeMutableRawPointer
    ) {
        switch self {
        case .bf16:
            let nibbles = UnsafePointer(residue.nibbles.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self)) + first / 2
            let pairs = count / 2
            for pair in 0..<pairs {
                let byte = UInt16(nibbles[pair])
                let even = symbols[2 &* pair] &<< 3 | byte & 7 | (byte & 8) &<< 12
                let odd = symbols[2 &* pair &+ 1] &<< 3 | (byte &>> 4) & 7 | (byte & 0x80) &<< 8
                destination.storeBytes(of: (UInt32(odd) &<< 16 | UInt32(even)).littleEndian, toByteOffset: pair &* 4, as: UInt32.self)
            }
            if count & 1 == 1 {
                let byte = UInt16(nibbles[pairs])
                let element = symbols[count - 1] &<< 3 | byte & 7 | (byte & 8) &<< 12
                destination.storeBytes(of: element.littleEndian, toByteOffset: (count - 1) * 2, as: UInt16.self)
            }
        case .f16:
            let bytes = UnsafePointer(residue.wide.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self)) + first
            for index in 0..<count {
                let byte = UInt16(bytes[index])
                let element = symbols[index] &<< 7 | byte & 0x7F | (byte & 0x80) &<< 8
                destination.storeBytes(of: element.littleEndian, toByteOffset: index &* 2, as: UInt16.self)
            }
        case .f32:
            let low = UnsafeRawPointer(residue.wide.unsafelyUnwrapped) + first * 2
            let nibbles = UnsafePointer(residue.nibbles.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self)) + first / 2
            for index in 0..<count {
                let nibble = UInt32(nibbles[index &>> 1] &>> UInt8(truncatingIfNeeded: (index & 1) &<< 2))
                let element = UInt32(symbols[index]) &<< 19
                    | UInt32(UInt16(littleEndian: low.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self)))
                    | (nibble & 7) &<< 16 | (nibble & 8) &<< 28
                destination.storeBytes(of: element.littleEndian, toByteOffset: index &* 4, as: UInt32.self)
            }
        }
    }
}
