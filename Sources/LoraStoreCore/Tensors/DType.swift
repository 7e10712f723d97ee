/// The element types a safetensors file can declare (every type of the safetensors format).
///
/// lorastore knows the bit width of every type so it can validate files and address tensors; it computes
/// only on F32, F16 and BF16 (``isMergeable``). Other types are carried as opaque bytes, never reinterpreted.
public enum DType: String, Sendable, Hashable, Codable, CaseIterable {
    case f64 = "F64"
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u64 = "U64"
    case u32 = "U32"
    case u16 = "U16"
    case u8 = "U8"
    case bool = "BOOL"
    case f8e4m3 = "F8_E4M3"
    case f8e5m2 = "F8_E5M2"
    case f8e8m0 = "F8_E8M0"
    case f6e2m3 = "F6_E2M3"
    case f6e3m2 = "F6_E3M2"
    case f4 = "F4"
    case c64 = "C64"

    /// Bits per element.
    public var bitWidth: Int {
        switch self {
        case .f64, .i64, .u64, .c64: 64
        case .f32, .i32, .u32: 32
        case .f16, .bf16, .i16, .u16: 16
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2, .f8e8m0: 8
        case .f6e2m3, .f6e3m2: 6
        case .f4: 4
        }
    }

    /// Bytes per element for whole-byte types; `nil` for the sub-byte types (F4, F6).
    public var byteWidth: Int? {
        bitWidth % 8 == 0 ? bitWidth / 8 : nil
    }

    /// The byte size of `elementCount` elements, or `nil` when it overflows or does not fill whole bytes.
    public func byteCount(elementCount: Int) -> Int? {
        let (bits, overflow) = elementCount.multipliedReportingOverflow(by: bitWidth)
        guard !overflow, bits % 8 == 0 else { return nil }
        return bits / 8
    }

    /// The name torch and a Hugging Face `config.json` give a float type a merge writes (`float32`,
    /// `float16`, `bfloat16`); nil for the others.
    public var torchName: String? {
        switch self {
        case .f32: "float32"
        case .f16: "float16"
        case .bf16: "bfloat16"
        default: nil
        }
    }

    /// The types the merge engine reads and writes: F32, F16 and BF16.
    public var isMergeable: Bool {
        self == .f32 || self == .f16 || self == .bf16
    }
}
