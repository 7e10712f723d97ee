import Foundation
import LoraStoreCore
import Testing

@Suite("PEFT fixtures")
struct FixtureTests {
    @Test func readsTheFP32Base() throws {
        let file = try SafetensorsFile(contentsOf: Fixtures.url("base_fp32/model.safetensors"))
        #expect(file.tensors.count == 21)
        #expect(file.metadata == ["format": "pt"])
        #expect(file.dataOffset == 8 + 2136)
        #expect(file.tensors.allSatisfy { $0.dtype == .f32 })
        #expect(file.tensors.map(\.elementCount).reduce(0, +) == 123_712)
        #expect(file.tensors.map(\.byteCount).reduce(0, +) == 494_848)
        #expect(file[name: "model.layers.0.self_attn.q_proj.weight"]?.shape == [64, 64])
        #expect(file[name: "model.layers.1.self_attn.k_proj.weight"]?.shape == [32, 64])
        #expect(file[name: "model.layers.0.mlp.down_proj.weight"]?.shape == [64, 172])
        let norm = try #require(file[name: "model.norm.weight"])
        let values = file.bytes(of: norm).bindMemory(to: Float.self)
        #expect(values.count == 64 && values.allSatisfy { $0.isFinite && $0 > 0 })
    }

    @Test func readsTheBF16Base() throws {
        let fp32 = try SafetensorsFile(contentsOf: Fixtures.url("base_fp32/model.safetensors"))
        let bf16 = try SafetensorsFile(contentsOf: Fixtures.url("base_bf16/model.safetensors"))
        #expect(bf16.tensors.map(\.name) == fp32.tensors.map(\.name))
        #expect(bf16.tensors.map(\.shape) == fp32.tensors.map(\.shape))
        #expect(bf16.tensors.allSatisfy { $0.dtype == .bf16 })
    }

    @Test func shardsMatchTheIndexAndTheUnshardedBase() throws {
        let directory = Fixtures.url("base_fp32_sharded")
        let index = try ShardIndex(contentsOf: directory.appendingPathComponent(ShardIndex.fileName))
        let base = try SafetensorsFile(contentsOf: Fixtures.url("base_fp32/model.safetensors"))
        var seen: [String: String] = [:]
        var totalSize = 0
        for shardName in index.shardFiles {
            let shard = try SafetensorsFile(contentsOf: directory.appendingPathComponent(shardName))
            for tensor in shard.tensors {
                seen[tensor.name] = shardName
                totalSize += tensor.byteCount
                let original = try #require(base[name: tensor.name])
                #expect(original.shape == tensor.shape)
                #expect(Array(shard.bytes(of: tensor)) == Array(base.bytes(of: original)))
            }
        }
        #expect(seen == index.weightMap)
        #expect(totalSize == index.totalSize)
    }

    @Test("Every fixture file validates", arguments: [
        "gpt2_fp32/model.safetensors",
        "adapters/a_r8_qv/adapter_model.safetensors",
        "adapters/a2_r8_qkv/adapter_model.safetensors",
        "adapters/b_r16_all_rslora/adapter_model.safetensors",
        "adapters/c_r4_patterns/adapter_model.safetensors",
        "adapters/d_r8_qv_lmhead_saved/adapter_model.safetensors",
        "adapters/e_r8_qv_bf16/adapter_model.safetensors",
        "adapters/f_dora_r8_qv/adapter_model.safetensors",
        "adapters/g_gpt2_r8_fan_in_fan_out/adapter_model.safetensors",
        "adapters/h_r4_embed_lmhead_lora/adapter_model.safetensors",
        "expected/a_r8_qv/lora_delta.safetensors",
        "expected/a_r8_qv/merged_touched.safetensors",
    ])
    func validates(_ path: String) throws {
        let file = try SafetensorsFile(contentsOf: Fixtures.url(path))
        #expect(!file.tensors.isEmpty)
        #expect(file.tensors.last?.dataRange.upperBound == file.tensors.map(\.byteCount).reduce(0, +))
    }

    @Test func rewritingTheBaseReproducesTheReferenceWriterByteForByte() throws {
        let url = Fixtures.url("base_fp32/model.safetensors")
        let original = try SafetensorsFile(contentsOf: url)
        try TemporaryDirectory.with { directory in
            let copy = directory.appendingPathComponent("model.safetensors")
            let header = try SafetensorsHeader(
                tensors: original.tensors.map { ($0.name, $0.dtype, $0.shape) },
                metadata: original.metadata ?? [:]
            )
            let writer = try SafetensorsWriter(url: copy, header: header)
            for tensor in original.tensors {
                try writer.append(original.bytes(of: tensor))
            }
            try writer.finish(sync: false)
            #expect(try Data(contentsOf: copy) == Data(contentsOf: url))
        }
    }
}
