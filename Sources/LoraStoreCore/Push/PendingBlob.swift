import Foundation

/// Bytes a push will store as a blob once everything is validated: a tensor inside a mapped safetensors
/// file, or a small file read into memory.
struct PendingBlob: Sendable {
    enum Source: Sendable {
        case tensor(SafetensorsFile, TensorInfo)
        /// Bytes made in memory: a small file of the folder, or a tensor quantized on the way; `name` says
        /// which, in errors.
        case file(Data, name: String)
    }

    let source: Source
    let encoding: BlobEncoding

    var size: Int {
        switch source {
        case .tensor(_, let info): info.byteCount
        case .file(let data, _): data.count
        }
    }

    func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        switch source {
        case .tensor(let file, let info): try body(file.bytes(of: info))
        case .file(let data, _): try data.withUnsafeBytes(body)
        }
    }

    /// What the blob holds, for people: `tensor "NAME" of PATH`, or the name of a file made in memory.
    var origin: String {
        switch source {
        case .tensor(let file, let info): "tensor \"\(info.name)\" of \(file.url.path)"
        case .file(_, let name): name
        }
    }
}
