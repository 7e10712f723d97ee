import Foundation

/// Bytes a push will store as a blob once everything is validated: a tensor inside a mapped safetensors
/// file, or a small file read into memory.
struct PendingBlob: Sendable {
    enum Source: Sendable {
        case tensor(SafetensorsFile, TensorInfo)
        case file(Data)
    }

    let source: Source
    let encoding: BlobEncoding

    var size: Int {
        switch source {
        case .tensor(_, let info): info.byteCount
        case .file(let data): data.count
        }
    }

    func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        switch source {
        case .tensor(let file, let info): try body(file.bytes(of: info))
        case .file(let data): try data.withUnsafeBytes(body)
        }
    }
}
