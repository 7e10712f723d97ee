import Foundation
import Testing
@testable import LoraStoreCore

/// An adapter merged into a base other than the model it was pushed against: refused unless asked for, and
/// accepted without asking where the two bases are one model.
@Suite("Adapters for another base")
struct AdapterBaseTests {
    /// Pushes a copy of `fixture` with one bit of `tensor` flipped (``Fixtures/copy(_:to:flippingFirstBitOf:)``)
    /// as `reference`: the same shapes and types, another model.
    @discardableResult
    private func pushVariant(
        _ test: TestStore, of fixture: String, changing tensor: String, as reference: String
    ) throws -> PushResult {
        let folder = test.directory.appending(path: "variant-\(reference.replacingOccurrences(of: "/", with: "-"))")
        try Fixtures.copy(fixture, to: folder, flippingFirstBitOf: tensor)
        return try test.store.push(folder, to: try Reference(parsing: reference))
    }

    private func references(_ adapters: [String]) throws -> [(reference: Reference, weight: Double)] {
        try adapters.map { (try Reference(parsing: $0), 1) }
    }

    @Test func anAdapterForAnotherModelOfTheSameShapesIsRefusedUnlessAllowed() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            try pushVariant(test, of: "base_fp32", changing: "model.layers.0.self_attn.q_proj.weight", as: "micro/tuned")
            let before = try test.snapshot()
            let tuned = try Reference(parsing: "micro/tuned")
            let refusal: (any Error) -> Bool = { error in
                guard case StoreError.adapterForOtherBase(let adapter, let pushedFor, let base, 20, 21) = error else { return false }
                return adapter.hasPrefix("acme/a:latest (") && pushedFor.hasPrefix("micro/base:fp32 (")
                    && base.hasPrefix("micro/tuned:latest (") && "\(error)".contains("--allow-other-base")
            }
            #expect(performing: { try test.store.createBuild(base: tuned, adapters: try references(["acme/a"])) }, throws: refusal)
            #expect(
                performing: {
                    try test.store.merge(base: tuned, adapters: try references(["acme/a"]), to: directory.appending(path: "merged"))
                }, throws: refusal)
            #expect(performing: { try test.store.pull("micro/tuned+acme/a", to: directory.appending(path: "adhoc")) }, throws: refusal)
            #expect(try test.snapshot() == before)
            #expect(!FileManager.default.fileExists(atPath: directory.appending(path: "merged").path))
            #expect(!FileManager.default.fileExists(atPath: directory.appending(path: "adhoc").path))

            let build = try test.store.createBuild(
                base: tuned, adapters: try references(["acme/a"]), tag: try Reference(parsing: "acme/tuned-a:v1"),
                allowingOtherBase: true)
            #expect(try test.store.pull("acme/tuned-a:v1", to: directory.appending(path: "pulled")).merged)
            #expect(
                try test.store.pull("micro/tuned+acme/a", to: directory.appending(path: "adhoc"), allowingOtherBase: true).digest == build,
                "the ad-hoc recipe is the build already recorded")
            try test.store.merge(
                base: tuned, adapters: try references(["acme/a"]), allowingOtherBase: true, to: directory.appending(path: "merged"))
            let merged = try LoadedTensor.all(in: directory.appending(path: "merged"))
            #expect(merged == (try LoadedTensor.all(in: directory.appending(path: "pulled"))))
            #expect(merged != (try LoadedTensor.all(in: Fixtures.url("base_fp32"))), "the adapter was merged")
            #expect(throws: StoreError.self, "a stored build was checked when it was recorded") {
                try test.store.pull("acme/tuned-a:v1", to: directory.appending(path: "again"), allowingOtherBase: true)
            }
            // An ad-hoc recipe recorded with permission (or by an earlier lorastore) is pulled without asking
            // again; naming it anew with a tag asks again.
            #expect(try test.store.pull("micro/tuned+acme/a", to: directory.appending(path: "recorded")).digest == build)
            #expect(
                performing: {
                    try test.store.createBuild(
                        base: tuned, adapters: try references(["acme/a"]), tag: try Reference(parsing: "acme/tuned-a:v2"))
                }, throws: refusal)
        }
    }

    @Test func theSameModelInAnotherLayoutTypeOrQuantizationNeedsNoPermission() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            try test.push("base_fp32_sharded", as: "micro/base:sharded")
            try test.push("base_bf16", as: "micro/base:bf16")
            try test.store.quantize(
                try Reference(parsing: "micro/base:fp32"), scheme: .int8Row, to: try Reference(parsing: "micro/base:i8"))
            try test.push("adapters/e_r8_qv_bf16", as: "acme/e", base: "micro/base:bf16")
            for (base, adapter) in [
                ("micro/base:sharded", "acme/a"), ("micro/base:bf16", "acme/a"), ("micro/base:i8", "acme/a"),
                ("micro/base:fp32", "acme/e"), ("micro/base:i8", "acme/e"),
            ] {
                let options = base.hasSuffix(":i8") ? MergeOptions(quantizedBase: .dequantize) : MergeOptions()
                #expect(throws: Never.self, "\(adapter) on \(base)") {
                    try test.store.createBuild(
                        base: try Reference(parsing: base), adapters: try references([adapter]), options: options)
                }
            }
        }
    }

    /// F16 and BF16 copies of one F32 model are one model: both were rounded from the same weights, so they
    /// are within a unit of each other though neither is the other cast.
    @Test func f16AndBF16CopiesOfOneModelAreOneModel() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let f16 = directory.appending(path: "base_f16")
            try FileManager.default.createDirectory(at: f16, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Fixtures.url("base_fp32/config.json"), to: f16.appending(path: "config.json"))
            let tensors = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors")).sorted { $0.key < $1.key }
            var converted: [(name: String, bytes: [UInt8], shape: [Int])] = []
            for (name, tensor) in tensors {
                let values = tensor.floats
                var bytes = [UInt8](repeating: 0, count: 2 * values.count)
                try values.withUnsafeBytes { source in
                    try bytes.withUnsafeMutableBytes { target in
                        guard let from = source.baseAddress, let to = target.baseAddress else { return }
                        try FloatConversion.convert(from, from: .f32, to: to, as: .f16, count: values.count)
                    }
                }
                converted.append((name, bytes, tensor.shape))
            }
            try Self.write(converted, dtype: .f16, to: f16.appending(path: "model.safetensors"))
            try test.store.push(f16, to: try Reference(parsing: "micro/base:f16"))
            try test.push("base_bf16", as: "micro/base:bf16")
            try test.push("adapters/e_r8_qv_bf16", as: "acme/e", base: "micro/base:bf16")
            try test.store.createBuild(
                base: try Reference(parsing: "micro/base:f16"), adapters: try references(["acme/e"]))
        }
    }

    /// Writes `tensors`, all of `dtype`, as one safetensors file.
    private static func write(_ tensors: [(name: String, bytes: [UInt8], shape: [Int])], dtype: DType, to url: URL) throws {
        func with(_ index: Int, _ collected: [(name: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer)]) throws {
            guard index < tensors.count else {
                _ = try SafetensorsWriter.write(to: url, tensors: collected, metadata: ["format": "pt"])
                return
            }
            try tensors[index].bytes.withUnsafeBytes { bytes in
                try with(index + 1, collected + [(tensors[index].name, dtype, tensors[index].shape, bytes)])
            }
        }
        try with(0, [])
    }

    /// A cast copy is recognised by its values: one value off in a tensor the comparison samples, and it is
    /// another model, in either direction of the cast.
    @Test func aCastCopyWithOneOtherValueIsAnotherModel() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            try pushVariant(test, of: "base_bf16", changing: "model.norm.weight", as: "micro/other:bf16")
            try test.push("adapters/e_r8_qv_bf16", as: "acme/e", base: "micro/other:bf16")
            for (base, adapter) in [("micro/other:bf16", "acme/a"), ("micro/base:fp32", "acme/e")] {
                #expect("\(base) with \(adapter)", performing: {
                    try test.store.createBuild(base: try Reference(parsing: base), adapters: try references([adapter]))
                }, throws: { error in
                    guard case StoreError.adapterForOtherBase(_, _, _, 0, 21) = error else { return false }
                    return true
                })
            }
        }
    }
}
