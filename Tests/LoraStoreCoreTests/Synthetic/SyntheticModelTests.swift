import Foundation
import Testing
@testable import LoraStoreCore

@Suite("Synthetic models and adapters")
struct SyntheticModelTests {
    /// Two micro layers: about 0.5 MB in F32.
    static let micro = SyntheticModel(dimensions: .micro, layers: 2, dtype: .f32, seed: 7)

    @Test func baseHasTransformersNamesShapesAndConfig() throws {
        try TemporaryDirectory.with { directory in
            let folder = directory.appending(path: "base")
            let files = try Self.micro.write(to: folder)
            #expect(files == ["config.json", "generation_config.json", "model.safetensors"])
            let file = try SafetensorsFile(contentsOf: folder.appending(path: "model.safetensors"))
            let names = file.tensors.map(\.name)
            #expect(names == names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
            let fixture = try SafetensorsFile(contentsOf: Fixtures.url("base_fp32/model.safetensors"))
            #expect(Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0.shape) })
                == Dictionary(uniqueKeysWithValues: fixture.tensors.map { ($0.name, $0.shape) }))
            #expect(file.tensors.allSatisfy { $0.dtype == .f32 })
            #expect(file.tensors.reduce(0) { $0 + $1.byteCount } == Self.micro.byteCount)
            // Same field set and formatting as transformers' own config for this shape.
            let config = try String(contentsOf: folder.appending(path: "config.json"), encoding: .utf8)
            let expected = try String(contentsOf: Fixtures.url("base_fp32/config.json"), encoding: .utf8)
            #expect(config == expected)
            let generation = try String(contentsOf: folder.appending(path: "generation_config.json"), encoding: .utf8)
            #expect(generation == (try String(contentsOf: Fixtures.url("base_fp32/generation_config.json"), encoding: .utf8)))
        }
    }

    @Test func valuesFollowTheDistributionsAndTheSeed() throws {
        try TemporaryDirectory.with { directory in
            try Self.micro.write(to: directory.appending(path: "a"))
            try Self.micro.write(to: directory.appending(path: "b"))
            var other = Self.micro
            other.seed = 8
            try other.write(to: directory.appending(path: "c"))
            let a = try LoadedTensor.file(directory.appending(path: "a/model.safetensors"))
            #expect(a == (try LoadedTensor.file(directory.appending(path: "b/model.safetensors"))))
            #expect(a != (try LoadedTensor.file(directory.appending(path: "c/model.safetensors"))))
            let weights = try #require(a["model.embed_tokens.weight"]).floats
            let mean = weights.reduce(0, +) / Float(weights.count)
            let deviation = (weights.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(weights.count)).squareRoot()
            #expect(abs(mean) < 0.001)
            #expect(abs(deviation - 0.02) < 0.0005)
            let norm = try #require(a["model.layers.1.input_layernorm.weight"]).floats
            #expect(norm.allSatisfy { $0 > 0.6 && $0 < 1.4 })
            #expect(Set(norm).count > norm.count / 2)
        }
    }

    @Test func shardsLikeTransformersAndSizedLandsNearTheTarget() throws {
        try TemporaryDirectory.with { directory in
            var model = Self.micro
            model.dtype = .bf16
            model.maxShardSize = 100_000
            let folder = directory.appending(path: "sharded")
            let files = try model.write(to: folder)
            #expect(files.contains(ShardIndex.fileName))
            let index = try ShardIndex(contentsOf: folder.appending(path: ShardIndex.fileName))
            #expect(index.totalSize == model.byteCount)
            #expect(Set(index.weightMap.keys) == Set(model.tensors.map(\.name)))
            model.maxShardSize = nil
            try model.write(to: directory.appending(path: "single"))
            let single = try LoadedTensor.file(directory.appending(path: "single/model.safetensors"))
            #expect(try LoadedTensor.all(in: folder) == single)
        }
        let sized = SyntheticModel.sized(bytes: 1 << 30, dtype: .bf16)
        #expect(sized.dimensions == .tinyLlama)
        #expect(sized.byteCount >= 1 << 30)
        #expect(sized.byteCount - (1 << 30) < sized.dimensions.layerParameters * 2)
        #expect(SyntheticModel.sized(bytes: 4 << 20, dtype: .f32).dimensions == .micro)
    }

    @Test func adapterIsWhatPEFTSaves() throws {
        try TemporaryDirectory.with { directory in
            let adapter = SyntheticAdapter(
                base: Self.micro, rank: 8, alpha: 16, targets: [.query, .value], seed: 3, baseModelName: "micro/base_fp32")
            let folder = directory.appending(path: "adapter")
            try adapter.write(to: folder)
            let config = try String(contentsOf: folder.appending(path: "adapter_config.json"), encoding: .utf8)
            #expect(config == (try String(contentsOf: Fixtures.url("adapters/a_r8_qv/adapter_config.json"), encoding: .utf8)))
            let file = try SafetensorsFile(contentsOf: folder.appending(path: "adapter_model.safetensors"))
            let fixture = try SafetensorsFile(contentsOf: Fixtures.url("adapters/a_r8_qv/adapter_model.safetensors"))
            #expect(file.tensors.map(\.name) == fixture.tensors.map(\.name))
            #expect(file.tensors.map(\.shape) == fixture.tensors.map(\.shape))
            #expect(file.metadata == ["format": "pt"])
            let b = try #require(try LoadedTensor.file(folder.appending(path: "adapter_model.safetensors"))[
                "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"])
            #expect(b.floats.allSatisfy { $0 != 0 })
        }
    }

    @Test(arguments: [DType.f32, .bf16])
    func generatedBaseAndAdapterPushAndMerge(_ dtype: DType) throws {
        try TemporaryDirectory.with { directory in
            var model = Self.micro
            model.dtype = dtype
            let adapter = SyntheticAdapter(base: model, rank: 4, layers: [1], dtype: dtype, useRSLoRA: true, seed: 5)
            try model.write(to: directory.appending(path: "base"))
            try adapter.write(to: directory.appending(path: "adapter"))
            let test = try TestStore(in: directory)
            let pushed = try test.store.push(directory.appending(path: "base"), to: try Reference(parsing: "synthetic/base"))
            #expect(pushed.tensorCount == model.tensors.count)
            let record = try test.store.push(
                directory.appending(path: "adapter"), to: try Reference(parsing: "synthetic/adapter"),
                options: PushOptions(base: try Reference(parsing: "synthetic/base")))
            #expect(record.kind == .adapter)
            let merged = try test.merge(base: "synthetic/base", adapters: [("synthetic/adapter", 1)])
            let base = try LoadedTensor.file(directory.appending(path: "base/model.safetensors"))
            let changed = merged.filter { base[$0.key] != $0.value }.keys.sorted()
            #expect(changed == LlamaProjection.allCases.map { $0.modulePath(layer: 1) + ".weight" }.sorted())
        }
    }
}
