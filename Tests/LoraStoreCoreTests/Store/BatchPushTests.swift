import Foundation
import Testing
@testable import LoraStoreCore

/// A batch push stores exactly what the same pushes one after the other would, and a batch that fails
/// anywhere leaves the store exactly as it was.
@Suite("Batch pushes")
struct BatchPushTests {
    /// Adapters of the fp32 base, pushed under these tags. The second pushes again what was pushed before the
    /// batch, the last two push a manifest already in the batch (under a new tag) and move a tag pushed before
    /// the batch.
    private static let items: [(fixture: String, reference: String)] = [
        ("adapters/a_r8_qv", "acme/a:v1"),
        ("adapters/a2_r8_qkv", "acme/a2"),
        ("adapters/b_r16_all_rslora", "acme/b"),
        ("adapters/c_r4_patterns", "team/c:2024"),
        ("adapters/d_r8_qv_lmhead_saved", "acme/d"),
        ("adapters/f_dora_r8_qv", "acme/f"),
        ("adapters/h_r4_embed_lmhead_lora", "acme/h"),
        ("adapters/a_r8_qv", "acme/a:again"),
        ("adapters/b_r16_all_rslora", "acme/pre"),
    ]

    private static func pushItems(_ items: [(fixture: String, reference: String)]) throws -> [PushItem] {
        try items.map { PushItem(path: Fixtures.url($0.fixture), reference: try Reference(parsing: $0.reference)) }
    }

    private static let base = PushOptions(base: try? Reference(parsing: "micro/base:fp32"))

    /// The blob files of a store, by path relative to its root, with the digest of their bytes.
    private static func blobFiles(_ test: TestStore) throws -> [String: Digest] {
        let root = test.store.root.path
        return Dictionary(uniqueKeysWithValues: try test.snapshot().files.map { (String($0.key.dropFirst(root.count)), $0.value) })
    }

    @Test func storesWhatPushesOneAfterTheOtherWould() throws {
        try TemporaryDirectory.with { directory in
            let batched = try TestStore(in: directory.appending(path: "batched")).withFP32Base()
            let single = try TestStore(in: directory.appending(path: "single")).withFP32Base()
            for test in [single, batched] {
                try test.push("adapters/a2_r8_qkv", as: "acme/a2", base: "micro/base:fp32")
                try test.push("adapters/a2_r8_qkv", as: "acme/pre", base: "micro/base:fp32")
            }

            let results = try batched.store.push(try Self.pushItems(Self.items), options: Self.base)
            let expected = try Self.items.map { try single.push($0.fixture, as: $0.reference, base: "micro/base:fp32") }
            #expect(results == expected)
            #expect(results[1].manifestExisted && results[1].newBlobs == 0, "acme/a2 was pushed before the batch")
            #expect(results[7].manifestExisted && results[7].newBlobs == 0, "the second a_r8_qv reuses the first")
            #expect(results[8].previousDigest == results[1].digest, "acme/pre moved")

            #expect(try Self.blobFiles(batched) == Self.blobFiles(single))
            let listed = try batched.store.list()
            #expect(listed.map { [$0.repository, $0.tag, $0.digest.hex] } == (try single.store.list()).map { [$0.repository, $0.tag, $0.digest.hex] })
            for entry in listed {
                let reference = try Reference(parsing: "\(entry.repository):\(entry.tag)")
                var shown = try batched.store.describe(reference)
                var reference2 = try single.store.describe(reference)
                shown.createdAt = .distantPast
                reference2.createdAt = .distantPast
                #expect(shown == reference2, "\(reference)")
            }
            #expect(try batched.store.verify(deep: true).faults.isEmpty)
        }
    }

    @Test func anAdapterWithoutABaseUsesItsRepositorysLastBase() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            try test.push("adapters/a_r8_qv", as: "acme/a:v1", base: "micro/base:fp32")
            let results = try test.store.push(
                try Self.pushItems([("adapters/a2_r8_qkv", "acme/a:v2"), ("adapters/c_r4_patterns", "acme/a:v3")]))
            let base = try test.store.resolve(try Reference(parsing: "micro/base:fp32")).digest
            for result in results {
                #expect(try test.store.describe(try Reference(parsing: result.reference)).adapter?.baseDigest == base)
            }
            let before = try test.snapshot()
            #expect(throws: StoreError.baseRequired(adapter: Fixtures.url("adapters/a2_r8_qkv").path)) {
                try test.store.push(try Self.pushItems([("adapters/a2_r8_qkv", "other/a")]))
            }
            #expect(try test.snapshot() == before)
        }
    }

    /// A batch with one bad item among good ones: refused with an error naming the bad item's file and
    /// tensor, and nothing of the good items is stored.
    @Test func aBadItemRefusesTheWholeBatch() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            let keyA = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
            let keyB = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
            let shape = directory.appending(path: "shape")
            try AdapterFolder.copy("a_r8_qv", to: shape) { tensors in
                guard let index = tensors.firstIndex(where: { $0.name == keyA }) else { return }
                tensors[index].shape = [8, 32]
                tensors[index].values = Array(tensors[index].values.prefix(8 * 32))
            }
            let notANumber = directory.appending(path: "nan")
            try AdapterFolder.copy("a_r8_qv", to: notANumber) { tensors in
                for index in tensors.indices where tensors[index].name == keyB {
                    tensors[index].values[3] = .nan
                }
            }
            let good = try Self.pushItems([("adapters/b_r16_all_rslora", "acme/b"), ("adapters/c_r4_patterns", "acme/a")])
            let bad: [(item: PushItem, mentions: [String])] = [
                (PushItem(path: shape, reference: try Reference(parsing: "acme/shape")),
                 [shape.appending(path: "adapter_model.safetensors").path, keyA, "[8, 32]"]),
                (PushItem(path: notANumber, reference: try Reference(parsing: "acme/nan")),
                 [notANumber.appending(path: "adapter_model.safetensors").path, keyB, "NaN"]),
                (PushItem(path: Fixtures.url("adapters/g_gpt2_r8_fan_in_fan_out"), reference: try Reference(parsing: "acme/gpt2")),
                 ["g_gpt2_r8_fan_in_fan_out/adapter_model.safetensors", "transformer.h.0.attn.c_attn", "another base"]),
                (PushItem(path: Fixtures.url("adapters/a_r8_qv"), reference: try Reference(parsing: "micro/base:adapter")),
                 ["micro/base", "holds base"]),
                (PushItem(path: Fixtures.url("base_bf16"), reference: try Reference(parsing: "acme/b:base")),
                 [Fixtures.url("base_bf16").path, "adapter_config.json"]),
                (PushItem(path: directory.appending(path: "missing"), reference: try Reference(parsing: "acme/missing")),
                 [directory.appending(path: "missing").path, "no such file"]),
                (PushItem(path: Fixtures.url("adapters/d_r8_qv_lmhead_saved"), reference: try Reference(parsing: "acme/b")),
                 [Fixtures.url("adapters/d_r8_qv_lmhead_saved").path, "acme/b:latest", "once"]),
            ]
            for (item, mentions) in bad {
                let before = try test.snapshot()
                do {
                    try test.store.push(good + [item], options: Self.base)
                    Issue.record("the batch with \(item.path.lastPathComponent) was stored")
                } catch {
                    for mention in mentions {
                        #expect("\(error)".contains(mention), "\"\(error)\" does not mention \(mention)")
                    }
                }
                #expect(try test.snapshot() == before, "\(item.path.lastPathComponent): the store changed")
            }
            #expect(try test.store.list(kind: .adapter).map(\.repository) == ["acme/a"])
        }
    }

    /// A failure after some blobs were linked into place (here: a blob folder that is a file) takes them
    /// back, so no blob file of the batch stays.
    @Test func aFailureWhileLinkingTakesBackTheBlobsAlreadyLinked() throws {
        try TemporaryDirectory.with { directory in
            let probe = try TestStore(in: directory.appending(path: "probe")).withFP32Base()
            let items = try Self.pushItems(Array(Self.items.prefix(4)))
            let results = try probe.store.push(items, options: Self.base)
            #expect(results.reduce(0) { $0 + $1.newBlobs } > 10)
            let written = try Set(results.flatMap { result in
                let shown = try probe.store.describe(try Reference(parsing: result.reference))
                return shown.tensors.map(\.digest) + shown.files.map(\.digest)
            }).sorted()

            // Block the folder of the last blob (in the order they are linked) whose folder does not exist yet.
            let test = try TestStore(in: directory.appending(path: "store")).withFP32Base()
            let folder = { (digest: Digest) in test.store.blobs.blobsDirectory.appending(path: String(digest.hex.prefix(2))) }
            let last = try #require(written.last { !FileManager.default.fileExists(atPath: folder($0).path) })
            #expect(written.firstIndex(of: last) ?? 0 > 0, "blobs are linked before the failure")
            try Data("not a folder".utf8).write(to: folder(last))
            let before = try test.snapshot()
            #expect(throws: FileAccessError.self) { try test.store.push(items, options: Self.base) }
            #expect(try test.snapshot() == before)
            #expect(try FileManager.default.contentsOfDirectory(atPath: test.store.blobs.temporaryDirectory.path).isEmpty)
        }
    }

    /// Batch pushes in separate processes (through the command line) while other processes collect garbage
    /// with no grace period: every batch that was committed stays whole.
    @Test func raceWithGarbageCollection() throws {
        try TemporaryDirectory.with { directory in
            let store = directory.appending(path: "store").path
            #expect(try CommandLineTool.run(["push", Fixtures.url("base_fp32").path, "micro/base:fp32", "--store", store]).status == 0)
            let fixtures = ["a_r8_qv", "a2_r8_qkv", "b_r16_all_rslora", "c_r4_patterns", "d_r8_qv_lmhead_saved"]
            for round in 0..<3 {
                let pushers = try (0..<2).map { pusher in
                    let pairs = fixtures.flatMap { fixture in
                        [Fixtures.url("adapters/\(fixture)").path, "p\(pusher)/\(fixture.replacingOccurrences(of: "_", with: "-")):r\(round)"]
                    }
                    return try CommandLineTool.start(["push"] + pairs + ["--base", "micro/base:fp32", "--store", store])
                }
                let removal = round > 0 ? [try CommandLineTool.start(["rm", "p0/a-r8-qv:r\(round - 1)", "--store", store])] : []
                let collectors = try (0..<2).map { _ in try CommandLineTool.start(["gc", "--grace", "0s", "--store", store]) }
                for started in pushers + removal + collectors {
                    let result = CommandLineTool.finish(started)
                    #expect(result.status == 0, "\(result.output)")
                }
            }
            let opened = try Store(root: URL(fileURLWithPath: store))
            #expect(try opened.verify(deep: true).faults.isEmpty)
            #expect(try opened.blobsMissingFromTaggedManifests() == [])
            #expect(try opened.list(kind: .adapter).count == 3 * 2 * fixtures.count - 2)
        }
    }

    @Test func theCommandLinePushesPairsInOneBatch() throws {
        try TemporaryDirectory.with { directory in
            let store = directory.appending(path: "store").path
            #expect(try CommandLineTool.run(["push", Fixtures.url("base_fp32").path, "micro/base:fp32", "--store", store]).status == 0)
            let pushed = try CommandLineTool.run([
                "push", Fixtures.url("adapters/a_r8_qv").path, "acme/a", Fixtures.url("adapters/c_r4_patterns").path, "acme/c",
                "--base", "micro/base:fp32", "--store", store,
            ])
            #expect(pushed.status == 0, "\(pushed.output)")
            #expect(pushed.output.contains("pushed adapter acme/a:latest") && pushed.output.contains("pushed adapter acme/c:latest"))
            #expect(pushed.output.contains("2 pushes in one transaction"))
            let odd = try CommandLineTool.run(["push", Fixtures.url("adapters/a_r8_qv").path, "acme/a", Fixtures.url("adapters/c_r4_patterns").path, "--store", store])
            #expect(odd.status != 0 && odd.output.contains("a PATH and a REFERENCE"), "\(odd.output)")
            let opened = try Store(root: URL(fileURLWithPath: store))
            #expect(try opened.list(kind: .adapter).map(\.repository) == ["acme/a", "acme/c"])
        }
    }
}
