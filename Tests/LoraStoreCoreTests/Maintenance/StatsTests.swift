import Foundation
import Testing
@testable import LoraStoreCore

@Suite("Storage accounting")
struct StatsTests {
    /// Every tensor's and small file's bytes in a pushed folder, hashed by the test itself.
    private func contents(of folder: String, skipping skipped: Set<String> = []) throws -> [(Digest, Int)] {
        let url = Fixtures.url(folder)
        var items: [(Digest, Int)] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: url.path).sorted() where !skipped.contains(name) {
            let file = url.appending(path: name)
            if name.hasSuffix(".safetensors") {
                let tensors = try SafetensorsFile(contentsOf: file)
                items += tensors.tensors.map { (Digest(of: tensors.bytes(of: $0)), $0.byteCount) }
            } else {
                let data = try Data(contentsOf: file)
                items.append((Digest(of: data), data.count))
            }
        }
        return items
    }

    /// What no tag or pin keeps is counted in the totals and said apart: garbage collection removes it.
    @Test func untaggedManifestsAreSaidApart() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            #expect(try test.store.stats().untaggedManifests == 0)
            try test.push("adapters/b_r16_all_rslora", as: "acme/b", base: "micro/base:fp32")
            try test.store.untag(try Reference(parsing: "acme/b"))
            try test.store.pull("micro/base:fp32+acme/a@0.5", to: directory.appending(path: "adhoc"))
            let stats = try test.store.stats()
            #expect(stats.untaggedManifests == 2, "the untagged adapter and the ad-hoc build")
            #expect((stats.untaggedExclusiveBytes ?? 0) > 0)
            #expect(try test.store.stats(for: try Reference(parsing: "acme/a")).untaggedManifests == nil, "a store-wide figure")
            let pinned = try #require(try test.store.cacheStatus().builds.first)
            try test.store.setPinned(Reference(digest: pinned.digest), true)
            #expect(try test.store.stats().untaggedManifests == 1, "a pin keeps the build")
            try test.store.collectGarbage(grace: 0)
            #expect(try test.store.stats().untaggedManifests == 0)
        }
    }

    @Test func figuresMatchWhatWasPushed() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let pushed = ["base_fp32", "base_fp32_sharded", "base_bf16", "adapters/a_r8_qv", "adapters/e_r8_qv_bf16"]
            try test.push("base_fp32", as: "micro/base:fp32")
            try test.push("base_fp32_sharded", as: "micro/base:sharded")
            try test.push("base_bf16", as: "micro/base:bf16")
            try test.push("adapters/a_r8_qv", as: "acme/a", base: "micro/base:fp32")
            try test.push("adapters/e_r8_qv_bf16", as: "acme/e", base: "micro/base:bf16")
            let materialized = try test.store.createBuild(
                base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), 1)],
                tag: try Reference(parsing: "acme/a-merged"))
            try test.store.createBuild(
                base: try Reference(parsing: "micro/base:bf16"), adapters: [(try Reference(parsing: "acme/e"), 0.5)],
                tag: try Reference(parsing: "acme/e-half"))
            try test.store.pull("acme/a-merged", to: directory.appending(path: "pulled"))

            let items = try pushed.flatMap { try contents(of: $0) }
            let modelLogical = items.reduce(0) { $0 + $1.1 }
            let distinct = Dictionary(items.map { ($0.0, $0.1) }, uniquingKeysWith: { first, _ in first })
            let distinctLogical = distinct.values.reduce(0, +)
            // A build's full merged model: every base tensor (same types) plus the base's files but its shard index.
            let fp32Model = try contents(of: "base_fp32").reduce(0) { $0 + $1.1 }
            let bf16Model = try contents(of: "base_bf16").reduce(0) { $0 + $1.1 }
            let changed = try LoadedTensor.file(Fixtures.url("expected/a_r8_qv/merged_touched.safetensors")).values.reduce(0) { $0 + $1.bytes.count }
            let blobFiles = try FileManager.default.subpathsOfDirectory(atPath: test.store.blobs.blobsDirectory.path)
                .map { test.store.blobs.blobsDirectory.appending(path: $0) }
                .filter { !$0.hasDirectoryPath && Digest($0.lastPathComponent) != nil }
                .reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0) }

            let stats = try test.store.stats()
            #expect(stats.logicalBytes == modelLogical + fp32Model + bf16Model)
            #expect(stats.dedupSavedBytes == modelLogical - distinctLogical)
            let configBytes = try ["config.json", "generation_config.json"]
                .map { try Data(contentsOf: Fixtures.url("base_fp32/\($0)")).count }
                .reduce(0, +)
            #expect(stats.dedupSavedBytes >= fp32Model - configBytes, "the sharded base repeats the F32 tensors")
            #expect(stats.buildSavedBytes == fp32Model + bf16Model - changed)
            #expect(stats.storedBytes == blobFiles, "stored bytes are the blob files on disk")
            #expect(stats.logicalBytes - stats.dedupSavedBytes - stats.compressionSavedBytes - stats.buildSavedBytes == stats.storedBytes)
            #expect(stats.compressionSavedBytes > 0, "adapter tensors are compressed")
            #expect(stats.unreferencedBytes == 0)
            let build = try #require(stats.entries.first { $0.digest == materialized })
            #expect(build.logicalBytes == fp32Model && build.storedBytes == changed && build.exclusiveBytes == changed)
            let sharded = try #require(stats.entries.first { $0.tags == ["micro/base:sharded"] })
            let indexFile = try Data(contentsOf: Fixtures.url("base_fp32_sharded/model.safetensors.index.json"))
            #expect(sharded.exclusiveBytes < indexFile.count, "only its shard index is its own (compressed)")
            let one = try test.store.stats(for: try Reference(parsing: "acme/a"))
            #expect(one.entries.count == 1 && one.entries[0].tags == ["acme/a:latest"])
        }
    }
}
