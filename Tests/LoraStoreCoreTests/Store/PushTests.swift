import Foundation
import Testing
@testable import LoraStoreCore

@Suite("Pushing bases and adapters")
struct PushTests {
    /// Every fixture adapter with the base it was trained on and what `show` must report.
    static let adapters: [(name: String, base: String, rank: Int, alpha: Double, targets: [String], dtype: DType)] = [
        ("a_r8_qv", "fp32", 8, 16, ["q_proj", "v_proj"], .f32),
        ("a2_r8_qkv", "fp32", 8, 8, ["q_proj", "k_proj", "v_proj"], .f32),
        ("b_r16_all_rslora", "fp32", 16, 32, ["down_proj", "up_proj", "k_proj", "gate_proj", "q_proj", "o_proj", "v_proj"], .f32),
        ("c_r4_patterns", "fp32", 4, 8, ["q_proj", "k_proj", "v_proj", "o_proj"], .f32),
        ("d_r8_qv_lmhead_saved", "fp32", 8, 16, ["q_proj", "v_proj"], .f32),
        ("e_r8_qv_bf16", "bf16", 8, 16, ["q_proj", "v_proj"], .bf16),
        ("f_dora_r8_qv", "fp32", 8, 16, ["q_proj", "v_proj"], .f32),
        ("g_gpt2_r8_fan_in_fan_out", "gpt2", 8, 16, ["c_proj", "c_attn", "c_fc"], .f32),
        ("h_r4_embed_lmhead_lora", "fp32", 4, 4, ["lm_head", "embed_tokens"], .f32),
    ]

    @Test func pushesEveryFixtureAndShowsAdapterMetadata() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            try test.push("base_fp32", as: "micro/base:fp32")
            try test.push("base_bf16", as: "micro/base:bf16")
            try test.push("base_fp32_sharded", as: "micro/base:fp32-sharded")
            try test.push("gpt2_fp32", as: "micro/gpt2")
            for adapter in Self.adapters {
                let base = adapter.base == "gpt2" ? "micro/gpt2" : "micro/base:\(adapter.base)"
                let result = try test.push("adapters/\(adapter.name)", as: "acme/\(adapter.name.replacingOccurrences(of: "_", with: "-"))", base: base)
                #expect(result.kind == .adapter)
                let shown = try test.store.describe(try Reference(parsing: "acme/\(adapter.name.replacingOccurrences(of: "_", with: "-"))"))
                let record = try #require(shown.adapter, "\(adapter.name) has no adapter record")
                #expect(record.rank == adapter.rank, "\(adapter.name)")
                #expect(record.alpha == adapter.alpha, "\(adapter.name)")
                #expect(record.targetModules == .names(adapter.targets), "\(adapter.name)")
                #expect(record.dtype == adapter.dtype, "\(adapter.name)")
                #expect(record.baseDigest == (try test.store.resolve(try Reference(parsing: base))).digest)
                #expect(shown.tensors.allSatisfy { $0.codec == .exponentANS || $0.storedSize == $0.size })
            }
            let rslora = try test.store.describe(try Reference(parsing: "acme/b-r16-all-rslora")).adapter
            #expect(rslora?.useRSLoRA == true)
            #expect(try test.store.describe(try Reference(parsing: "acme/f-dora-r8-qv")).adapter?.useDoRA == true)
            #expect(try test.store.describe(try Reference(parsing: "acme/g-gpt2-r8-fan-in-fan-out")).adapter?.fanInFanOut == true)
            let patterns = try #require(try test.store.describe(try Reference(parsing: "acme/c-r4-patterns")).adapter)
            #expect(patterns.rankPattern.map(\.pattern) == ["layers.1.self_attn.o_proj"])
            #expect(patterns.alphaPattern.map(\.pattern) == ["layers.1.self_attn.o_proj", "v_proj"])
            #expect(patterns.layers == [0, 1])
            #expect(try test.store.list(kind: .adapter).count == Self.adapters.count)
            #expect(try test.store.list(kind: .base).count == 4)
        }
    }

    @Test func shardedLayoutOfAStoredBaseAddsNoTensorBytes() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let first = try test.push("base_fp32", as: "micro/base:fp32")
            let tensorBytes = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors")).values.reduce(0) { $0 + $1.bytes.count }
            #expect(first.newLogicalBytes >= tensorBytes)
            let sharded = try test.push("base_fp32_sharded", as: "micro/base:sharded")
            let indexSize = try Data(contentsOf: Fixtures.url("base_fp32_sharded/model.safetensors.index.json")).count
            #expect(sharded.tensorCount == first.tensorCount)
            #expect(sharded.newLogicalBytes == indexSize, "only the shard index is new")
            #expect(sharded.reusedBytes >= tensorBytes)
            #expect(sharded.digest != first.digest, "the manifests record different shard layouts")
            let again = try test.push("base_fp32", as: "micro/base:again")
            #expect(again.newBlobs == 0)
            #expect(again.manifestExisted)
            #expect(again.digest == first.digest)
        }
    }

    @Test func pushesAFolderOfSymbolicLinksAsTheFilesTheyNameLikeAHubCacheSnapshot() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let real = try test.push("base_fp32", as: "micro/base:fp32")
            func linkedCopy(of fixture: String, to name: String) throws -> URL {
                let folder = directory.appending(path: name)
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                for file in try FileManager.default.contentsOfDirectory(atPath: Fixtures.url(fixture).path) {
                    try FileManager.default.createSymbolicLink(
                        atPath: folder.appending(path: file).path, withDestinationPath: Fixtures.url(fixture).appending(path: file).path)
                }
                return folder
            }
            let base = try test.store.push(try linkedCopy(of: "base_fp32", to: "snapshot"), to: try Reference(parsing: "micro/linked"))
            #expect(base.digest == real.digest)
            #expect(base.skippedFiles.isEmpty)
            let adapter = try test.store.push(
                try linkedCopy(of: "adapters/a_r8_qv", to: "adapter"), to: try Reference(parsing: "acme/linked"),
                options: PushOptions(base: try Reference(parsing: "micro/base:fp32")))
            #expect(adapter.digest == (try test.push("adapters/a_r8_qv", as: "acme/real", base: "micro/base:fp32")).digest)
        }
    }

    @Test func aPushRestoresABlobFileThatWentMissing() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let lost = try test.store.resolve(try Reference(parsing: "micro/base:fp32")).manifest.tensors[0].digest
            try FileManager.default.removeItem(atPath: test.store.blobs.path(of: lost))
            #expect(try test.store.verify().faults.map(\.kind) == [.missingBlob])
            let again = try test.push("base_fp32", as: "micro/base:again")
            #expect(again.newBlobs == 1, "the lost file is written again")
            #expect(try test.store.verify(deep: true).faults.isEmpty)
        }
    }

    /// A blob file no row references (a crash leftover) that the disk truncated since is not adopted by a
    /// push of the same tensor: it is replaced, and the store reads back whole.
    @Test func aPushReplacesADamagedFileNothingReferences() throws {
        try TemporaryDirectory.with { directory in
            let scratch = try TestStore(in: directory.appending(path: "scratch")).withFP32BaseAndAdapterA()
            let adapter = try scratch.store.resolve(try Reference(parsing: "acme/a")).manifest
            let leftovers = adapter.tensors.map(\.digest)
            let test = try TestStore(in: directory.appending(path: "main")).withFP32Base()
            for digest in leftovers {
                let whole = try Data(contentsOf: URL(fileURLWithPath: scratch.store.blobs.path(of: digest)))
                let path = URL(fileURLWithPath: test.store.blobs.path(of: digest))
                try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
                try whole.prefix(whole.count / 2).write(to: path)
            }
            try test.push("adapters/a_r8_qv", as: "acme/a", base: "micro/base:fp32")
            #expect(try test.store.verify(deep: true).faults.isEmpty)
            let pulled = directory.appending(path: "pulled")
            try test.store.pull("acme/a", to: pulled)
            let expected = try LoadedTensor.all(in: Fixtures.url("adapters/a_r8_qv"))
            #expect(try LoadedTensor.all(in: pulled) == expected)
        }
    }

    @Test func pushesASingleSafetensorsFile() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let result = try test.store.push(
                Fixtures.url("base_fp32/model.safetensors"), to: try Reference(parsing: "micro/single"))
            #expect(result.kind == .base)
            #expect(result.tensorCount == 21)
            #expect(result.fileCount == 0)
        }
    }

    @Test func adapterBaseDefaultsToTheRepositorysLastPush() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            #expect(throws: StoreError.baseRequired(adapter: Fixtures.url("adapters/a_r8_qv").path)) {
                try test.push("adapters/a_r8_qv", as: "acme/a:v1")
            }
            try test.push("adapters/a_r8_qv", as: "acme/a:v1", base: "micro/base:fp32")
            let second = try test.push("adapters/a2_r8_qkv", as: "acme/a:v2")
            #expect(second.kind == .adapter)
        }
    }

    @Test func aRepositoryHoldsOneKind() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            #expect(throws: StoreError.repositoryKind(repository: "micro/base", holds: .base, pushed: .adapter)) {
                try test.push("adapters/a_r8_qv", as: "micro/base:lora", base: "micro/base:fp32")
            }
        }
    }

    @Test func tagsMoveAndRemoveLeavesTheManifest() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let digest = try test.store.tag(try Reference(parsing: "micro/base:fp32"), as: try Reference(parsing: "micro/base:stable"))
            #expect(try test.store.resolve(try Reference(parsing: "micro/base:stable")).digest == digest)
            #expect(try test.store.resolve(try Reference(parsing: "micro/base@\(digest)")).digest == digest)
            #expect(try test.store.untag(try Reference(parsing: "micro/base:stable")) == ["micro/base:stable"])
            #expect(throws: StoreError.notFound("micro/base:stable")) {
                try test.store.resolve(try Reference(parsing: "micro/base:stable"))
            }
            #expect(try test.store.resolve(Reference(digest: digest)).kind == .base)
        }
    }
}
