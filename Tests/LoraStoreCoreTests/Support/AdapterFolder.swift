import Foundation
@testable import LoraStoreCore

/// Writes PEFT-style adapter folders (and model files) for tests, from a fixture or from scratch.
enum AdapterFolder {
    /// Copies a fixture adapter into `folder`, letting `edit` change its tensors (name → (dtype, shape, F32
    /// values)) and its config JSON text before writing.
    static func copy(
        _ fixture: String, to folder: URL,
        editTensors: (inout [(name: String, shape: [Int], values: [Float])]) -> Void = { _ in },
        editConfig: (String) -> String = { $0 }
    ) throws {
        let source = Fixtures.url("adapters/\(fixture)")
        let loaded = try SafetensorsFile(contentsOf: source.appending(path: "adapter_model.safetensors"))
        var tensors: [(name: String, shape: [Int], values: [Float])] = try loaded.tensors.map { info in
            let bytes = loaded.bytes(of: info)
            var values = [Float](repeating: 0, count: info.elementCount)
            try values.withUnsafeMutableBytes { buffer in
                try FloatConversion.convert(bytes.baseAddress!, from: info.dtype, to: buffer.baseAddress!, as: .f32, count: info.elementCount)
            }
            return (info.name, info.shape, values)
        }
        editTensors(&tensors)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let config = try String(contentsOf: source.appending(path: "adapter_config.json"), encoding: .utf8)
        try editConfig(config).write(to: folder.appending(path: "adapter_config.json"), atomically: true, encoding: .utf8)
        try writeF32(tensors, to: folder.appending(path: "adapter_model.safetensors"))
    }

    /// Writes F32 tensors to a safetensors file.
    static func writeF32(_ tensors: [(name: String, shape: [Int], values: [Float])], to url: URL) throws {
        let buffers = tensors.map { tensor in tensor.values.withUnsafeBytes { Array($0) } }
        try withByteBuffers(buffers) { pointers in
            _ = try SafetensorsWriter.write(
                to: url,
                tensors: zip(tensors, pointers).map { ($0.name, .f32, $0.shape, $1) },
                metadata: ["format": "pt"])
        }
    }

    private static func withByteBuffers<T>(_ buffers: [[UInt8]], _ body: ([UnsafeRawBufferPointer]) throws -> T) rethrows -> T {
        var pointers: [UnsafeRawBufferPointer] = []
        func recurse(_ index: Int) throws -> T {
            guard index < buffers.count else { return try body(pointers) }
            return try buffers[index].withUnsafeBytes { pointer in
                pointers.append(pointer)
                return try recurse(index + 1)
            }
        }
        return try recurse(0)
    }
}
