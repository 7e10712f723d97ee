/// Builds safetensors files byte by byte, including malformed ones.
enum RawSafetensors {
    /// An 8-byte little-endian length followed by `rest`.
    static func bytes(declaredLength: UInt64, rest: [UInt8]) -> [UInt8] {
        withUnsafeBytes(of: declaredLength.littleEndian, Array.init) + rest
    }

    /// A file with `header` as its JSON and `dataCount` bytes of data (0, 1, 2, ...).
    static func bytes(header: String, dataCount: Int) -> [UInt8] {
        bytes(header: Array(header.utf8), dataCount: dataCount)
    }

    /// A file with raw `header` bytes and `dataCount` bytes of data (0, 1, 2, ...).
    static func bytes(header: [UInt8], dataCount: Int) -> [UInt8] {
        bytes(declaredLength: UInt64(header.count), rest: header + (0 ..< dataCount).map { UInt8(truncatingIfNeeded: $0) })
    }

    /// The JSON of one tensor entry.
    static func entry(_ name: String, _ dtype: String, _ shape: [Int], _ begin: Int, _ end: Int) -> String {
        #""\#(name)":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":[\#(begin),\#(end)]}"#
    }
}
