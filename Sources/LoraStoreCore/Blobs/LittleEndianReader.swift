/// Reads the little-endian integers of a codec header in order, failing on truncation with the field's name.
struct LittleEndianReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Reads the next `T`. `field` names it in the error, and is only built when the bytes run out: headers
    /// read two fields per code entry, and building their names took a tenth of decoding a small blob.
    mutating func read<T: FixedWidthInteger>(
        _ type: T.Type, _ field: @autoclosure () -> String
    ) throws(BlobCodecError) -> T {
        let size = MemoryLayout<T>.size
        guard bytes.count - offset >= size else {
            throw .truncated("the \(field()) at offset \(offset) is missing")
        }
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += size
        return value
    }
}
