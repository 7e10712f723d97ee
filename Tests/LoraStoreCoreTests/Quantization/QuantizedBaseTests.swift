import Foundation
import Testing
@testable import LoraStoreCore

@Suite("Quantized bases: storing, sharing and pulling")
struct QuantizedBaseTests {
    private func manifest(_ test: TestStore, _ reference: String) throws -> Manifest {
        try test.store.resolve(try Reference(parsing: reference)).manifest
    }

    @discardableResult
    private func quantize(
        _ test: TestStore, _ scheme: QuantizationScheme, as reference: String, tensors: [String]? = nil
    ) throws -> PushResult {
        try test.store.quantize(
            try Reference(parsing: "micro/base:fp32"), scheme: scheme, to: try Reference(parsing: reference), tensors: tensors)
    }

    @Test func q8_0QuantizesProjectionsSharesTheRestAndKeepsDownProj() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let original = try manifest(test, "micro/base:fp32")
            #expect(original.quantization == nil)
            #expect(!String(decoding: try original.canonicalJSON(), as: UTF8.self).contains("quantization"),
                    "a float manifest's JSON, and so its digest, does not change")
            let result = try quantize(test, .q8_0, as: "micro/base:q8")
            let quantized = try manifest(test, "micro/base:q8")
            let names = ["q_proj", "k_proj", "v_proj", "o_proj"].map { "self_attn.\($0)" } + ["mlp.gate_proj", "mlp.up_proj"]
            let expected = (0..<2).flatMap { layer in names.map { "model.layers.\(layer).\($0).weight" } }
            #expect(Set(result.quantization?.quantized ?? []) == Set(expected))
            #expect(result.quantization?.kept.count == 2)
            #expect(result.quantization?.kept.allSatisfy { $0.contains("down_proj") && $0.contains("172") } == true)
            #expect(result.newBlobs == expected.count, "only the quantized weights are new blobs")
            // show says which weights are quantized, in which scheme.
            let described = try test.store.describe(try Reference(parsing: "micro/base:q8"))
            #expect(Set(described.quantization?.keys.map { $0 } ?? []) == Set(expected))
            #expect(described.quantization?.values.allSatisfy { $0.scheme == .q8_0 } == true)
            #expect(try test.store.describe(try Reference(parsing: "micro/base:fp32")).quantization == nil)

            let base = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
            let byName = Dictionary(original.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for entry in quantized.tensors {
                guard let weight = quantized.quantization?[entry.name] else {
                    #expect(entry.digest == byName[entry.name]?.digest, "\(entry.name) shares the original's blob")
                    continue
                }
                #expect(weight.scheme == .q8_0 && weight.dtype == .f32 && weight.shape == byName[entry.name]?.shape)
                #expect(entry.dtype == .u8 && entry.shape == [weight.rows, weight.columns / 32 * 34])
                let floats = try #require(base[entry.name]).floats
                let reference = try floats.withUnsafeBufferPointer {
                    try Quantizer.quantize($0, rows: weight.rows, columns: weight.columns, scheme: .q8_0)
                }
                let contents = try test.store.blobs.read(entry.digest, codec: .raw)
                #expect(Array(contents.bytes) == reference.data, "\(entry.name) is the quantizer's bytes")
            }
            #expect(quantized.logicalTensors.map(\.name) == original.tensors.map(\.name))
            #expect(quantized.logicalTensors.map(\.signature.shape) == original.tensors.map(\.shape))
        }
    }

    @Test func aNamedWeightTheSchemeCannotStoreIsRefusedAndNothingIsStored() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let before = try test.snapshot()
            let down = "model.layers.0.mlp.down_proj.weight"
            #expect(throws: QuantizationError.self) { try quantize(test, .q4_0, as: "micro/base:q4", tensors: [down]) }
            do {
                _ = try quantize(test, .q4_0, as: "micro/base:q4", tensors: [down])
            } catch let error as QuantizationError {
                #expect(error.description.contains(down) && error.description.contains("172"))
            }
            #expect(throws: QuantizationError.self) {
                try quantize(test, .int8Row, as: "micro/base:i8", tensors: ["model.norm.weight"])
            }
            #expect(try test.snapshot() == before)
            let result = try quantize(test, .int8Row, as: "micro/base:i8", tensors: [down])
            #expect(result.quantization?.quantized == [down], "int8-row stores any row length")
            #expect(throws: QuantizationError.self) {
                try test.store.quantize(
                    try Reference(parsing: "micro/base:i8"), scheme: .q8_0, to: try Reference(parsing: "micro/base:twice"))
            }
        }
    }

    @Test func pullWritesCodesAndScalesOrDequantizedWeights() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            try quantize(test, .int8Row, as: "micro/base:i8")
            let stored = directory.appending(path: "stored")
            try test.store.pull("micro/base:i8", to: stored)
            let tensors = try LoadedTensor.all(in: stored)
            let base = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
            let q = "model.layers.1.self_attn.q_proj.weight"
            let codes = try #require(tensors[q])
            let scales = try #require(tensors[q + ".scale"])
            #expect(codes.dtype == .i8 && codes.shape == [64, 64])
            #expect(scales.dtype == .f32 && scales.shape == [64])
            #expect(tensors["model.layers.1.mlp.down_proj.weight"]?.dtype == .i8, "int8-row takes 172-long rows")
            #expect(tensors["model.norm.weight"] == base["model.norm.weight"])
            #expect(tensors["lm_head.weight"] == base["lm_head.weight"])
            let metadata = try SafetensorsFile(contentsOf: stored.appending(path: "model.safetensors")).metadata
            let recorded = try JSONDecoder().decode(
                [String: QuantizedWeight].self, from: Data((metadata?[BaseQuantization.metadataKey] ?? "").utf8))
            #expect(recorded[q] == QuantizedWeight(scheme: .int8Row, dtype: .f32, shape: [64, 64], scaleTensor: q + ".scale"))

            let dequantized = directory.appending(path: "f16")
            try test.store.pull("micro/base:i8", to: dequantized, dequantize: .f16)
            let floats = try LoadedTensor.all(in: dequantized)
            #expect(Set(floats.keys) == Set(base.keys))
            let weight = try #require(floats[q])
            #expect(weight.dtype == .f16 && weight.shape == [64, 64])
            let quantized = try QuantizedTensor(
                scheme: .int8Row, rows: 64, columns: 64, data: codes.bytes, scales: scales.bytes)
            let values = Quantizer.dequantize(quantized)
            let expected = values.map { FloatConversion.float(fromFloat16: FloatConversion.float16(from: $0)) }
            #expect(weight.floats == expected)
            #expect(maxDifference(weight, try #require(base[q])) < 0.02)
            #expect(floats["model.norm.weight"] == base["model.norm.weight"])
            #expect(throws: StoreError.self) {
                try test.store.pull("micro/base:fp32", to: directory.appending(path: "float"), dequantize: .f16)
            }
        }
    }

    /// Dequantizing to a narrower float refuses a weight whose values leave that type's range, naming it,
    /// and writes nothing; F32 holds them.
    @Test func dequantizingBeyondTheTypesRangeIsRefusedByName() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let folder = directory.appending(path: "large")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let name = "model.layers.0.self_attn.q_proj.weight"
            var values = [Float](repeating: 0.5, count: 4 * 32)
            values[40] = 100_000
            try AdapterFolder.writeF32([(name, [4, 32], values)], to: folder.appending(path: "model.safetensors"))
            try test.store.push(folder, to: try Reference(parsing: "micro/large:fp32"))
            try test.store.quantize(
                try Reference(parsing: "micro/large:fp32"), scheme: .int8Row, to: try Reference(parsing: "micro/large:i8"),
                tensors: [name])
            let narrow = directory.appending(path: "f16")
            #expect {
                try test.store.pull("micro/large:i8", to: narrow, dequantize: .f16)
            } throws: { error in
                "\(error)".contains(name) && "\(error)".contains("dequantize to F32")
            }
            #expect(!FileManager.default.fileExists(atPath: narrow.path))
            let wide = directory.appending(path: "f32")
            try test.store.pull("micro/large:i8", to: wide, dequantize: .f32)
            #expect(try #require(try LoadedTensor.all(in: wide)[name]).floats[40] == 100_000)
        }
    }

    /// A quantized base pulled into a folder and pushed again (to another store, or through a registry) is
    /// the same manifest, quantization included, and adapters of the float base fit it; a folder whose
    /// recorded quantization does not fit its tensors is refused.
    @Test(arguments: [QuantizationScheme.int8Row, .q8_0])
    func aPulledQuantizedBasePushedAgainIsTheSameBase(scheme: QuantizationScheme) throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let original = try quantize(test, scheme, as: "micro/base:q")
            let folder = directory.appending(path: "pulled")
            try test.store.pull("micro/base:q", to: folder)

            let other = try TestStore(in: directory.appending(path: "other"))
            let pushed = try other.store.push(folder, to: try Reference(parsing: "micro/base:q"))
            #expect(pushed.digest == original.digest)
            #expect(try manifest(other, "micro/base:q").quantization == manifest(test, "micro/base:q").quantization)
            try other.push("adapters/a_r8_qv", as: "acme/a", base: "micro/base:q")

            // The record names a weight the file stores in another shape.
            let file = folder.appending(path: "model.safetensors")
            let parsed = try SafetensorsFile(contentsOf: file)
            var metadata = try #require(parsed.metadata)
            let record = try #require(metadata[BaseQuantization.metadataKey])
            metadata[BaseQuantization.metadataKey] = record.replacingOccurrences(of: "[64,64]", with: "[64,32]")
            #expect(metadata[BaseQuantization.metadataKey] != record)
            let tensors = try LoadedTensor.file(file).sorted { $0.key < $1.key }
            try tensors.flatMap(\.value.bytes).withUnsafeBytes { all in
                var offset = 0
                let entries = tensors.map { name, tensor in
                    defer { offset += tensor.bytes.count }
                    return (name, tensor.dtype, tensor.shape, UnsafeRawBufferPointer(rebasing: all[offset ..< offset + tensor.bytes.count]))
                }
                try SafetensorsWriter.write(to: file, tensors: entries, metadata: metadata)
            }
            let before = try other.snapshot()
            #expect {
                try other.store.push(folder, to: try Reference(parsing: "micro/base:bad"))
            } throws: { error in
                "\(error)".contains("quantized weight")
            }
            #expect(try other.snapshot() == before)
        }
    }

    @Test func aShardedBaseKeepsItsShardsWithAnIndexListingTheScales() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            try test.push("base_fp32_sharded", as: "micro/base:fp32")
            try quantize(test, .int8Row, as: "micro/base:i8")
            let stored = directory.appending(path: "stored")
            try test.store.pull("micro/base:i8", to: stored)
            let index = try ShardIndex(contentsOf: stored.appending(path: ShardIndex.fileName))
            let tensors = try LoadedTensor.all(in: stored)
            #expect(Set(index.weightMap.keys) == Set(tensors.keys))
            #expect(index.weightMap["model.layers.0.self_attn.q_proj.weight.scale"] == index.weightMap["model.layers.0.self_attn.q_proj.weight"])
            let dequantized = directory.appending(path: "f32")
            try test.store.pull("micro/base:i8", to: dequantized, dequantize: .f32)
            let floatIndex = try ShardIndex(contentsOf: dequantized.appending(path: ShardIndex.fileName))
            #expect(Set(floatIndex.weightMap.keys) == Set(try LoadedTensor.all(in: dequantized).keys))
            #expect(floatIndex.shardFiles == index.shardFiles)
        }
    }

    @Test func pushingQuantizedStoresTheSameManifestAsQuantizingAfterwards() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let later = try quantize(test, .q4_0, as: "micro/base:q4")
            let other = try TestStore(in: directory.appending(path: "other"))
            let pushed = try other.store.push(
                Fixtures.url("base_fp32"), to: try Reference(parsing: "micro/base:q4"), options: PushOptions(quantize: .q4_0))
            #expect(pushed.digest == later.digest)
            #expect(pushed.quantization == later.quantization)
            let stored = try other.store.index.database.read { db in
                try Int.fetchOne(db, sql: "SELECT SUM(logical_size) FROM blob") ?? 0
            }
            #expect(stored == pushed.logicalBytes, "the store holds the quantized base and nothing else: no float projection")
        }
    }

    @Test func anAdapterPushedAgainstTheFloatBaseFitsItsQuantizedCopy() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            try quantize(test, .q8_0, as: "micro/base:q8")
            try test.push("adapters/a_r8_qv", as: "acme/a", base: "micro/base:fp32")
            let pushed = try test.push("adapters/b_r16_all_rslora", as: "acme/b", base: "micro/base:q8")
            #expect(pushed.kind == .adapter)
            let quantized = try test.store.resolve(try Reference(parsing: "micro/base:q8"))
            let adapter = try test.store.resolve(try Reference(parsing: "acme/a"))
            let codecs = try test.store.index.database.read { db in try test.store.codecs(of: adapter.manifest.blobDigests, in: db) }
            let loaded = try LoadedAdapter(stored: adapter, tag: nil, weight: 1, base: quantized.manifest, baseModelType: "llama", store: test.store, codecs: codecs)
            #expect(loaded.layout.modules.count == 4)
        }
    }

    /// Quantizing into one of the original's own tags would move that tag off the float weights: refused,
    /// naming a tag to use, with nothing stored and the tag where it was.
    @Test func theCopyCannotTakeTheOriginalsTag() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let original = try test.store.resolve(try Reference(parsing: "micro/base:fp32")).digest
            let before = try test.snapshot()
            #expect {
                try quantize(test, .q8_0, as: "micro/base:fp32")
            } throws: { error in
                "\(error)".contains("names the base being quantized") && "\(error)".contains("micro/base:fp32-q8_0")
            }
            #expect(try test.snapshot() == before)
            #expect(try test.store.resolve(try Reference(parsing: "micro/base:fp32")).digest == original)
        }
    }

    /// An embedding LoRA carries its own copy of the embedding; on a base that holds the embedding
    /// quantized, the refusal says that, not that the copy differs (a resized vocabulary).
    @Test func anEmbeddingLoRAOnAQuantizedEmbeddingIsRefusedSayingSo() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            try quantize(test, .q8_0, as: "micro/base:q8-embed", tensors: ["model.embed_tokens.weight"])
            try test.push("adapters/h_r4_embed_lmhead_lora", as: "acme/h", base: "micro/base:fp32")
            #expect {
                try test.store.createBuild(
                    base: try Reference(parsing: "micro/base:q8-embed"), adapters: [(try Reference(parsing: "acme/h"), 1)],
                    options: MergeOptions(quantizedBase: .dequantize))
            } throws: { error in
                "\(error)".contains("which this base holds quantized (q8_0)") && !"\(error)".contains("resized vocabulary")
            }
        }
    }
}
