import Foundation
import GRDB
import Testing
@testable import LoraStoreCore

/// Build requests and pulls that must be refused, naming what is wrong, with nothing recorded or written.
@Suite("Build refusals")
struct BuildRefusalTests {
    private func buildRows(_ test: TestStore) throws -> Int {
        try test.store.index.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM build") ?? -1 }
    }

    @Test func aBuildOfAnUnknownBaseOrAdapterOrOfAnotherBasesAdapterIsRefused() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            try test.push("gpt2_fp32", as: "micro/gpt2")
            try test.push("adapters/g_gpt2_r8_fan_in_fan_out", as: "acme/gpt2-lora", base: "micro/gpt2")
            let before = try test.snapshot()
            let base = try Reference(parsing: "micro/base:fp32")
            #expect(throws: StoreError.notFound("acme/missing:latest")) {
                try test.store.createBuild(base: base, adapters: [(try Reference(parsing: "acme/missing"), 1)])
            }
            #expect(throws: StoreError.notFound("micro/none:latest")) {
                try test.store.createBuild(base: try Reference(parsing: "micro/none"), adapters: [(try Reference(parsing: "acme/a"), 1)])
            }
            #expect(throws: StoreError.wrongKind(reference: "acme/a:latest", expected: .base, found: .adapter)) {
                try test.store.createBuild(base: try Reference(parsing: "acme/a"), adapters: [])
            }
            // An adapter that does not fit is named as such, before its base is compared with this one.
            #expect {
                try test.store.createBuild(base: base, adapters: [(try Reference(parsing: "acme/gpt2-lora"), 1)])
            } throws: { error in
                "\(error)".contains("the base has no tensor \"transformer.h.0.attn.c_attn.weight\"")
                    && "\(error)".contains("is this adapter for another base?")
                    && "\(error)".contains("adapter acme/gpt2-lora:latest (")
            }
            #expect(try test.snapshot() == before)
            #expect(try buildRows(test) == 0)
        }
    }

    /// Options no merge can honour are refused when the recipe is recorded, not when it is first pulled.
    @Test func aShardSizeBelowOneByteIsRefused() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            let before = try test.snapshot()
            for size in [0, -1] {
                #expect(throws: StoreError.mergeRefused("the maximum shard size is a positive number of bytes, not \(size)")) {
                    try test.store.createBuild(
                        base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), 1)],
                        options: MergeOptions(maxShardSize: size))
                }
            }
            #expect(try test.snapshot() == before)
            #expect(try buildRows(test) == 0)
        }
    }

    /// A pull or merge into a folder that holds anything is refused, naming it: the folder keeps its files
    /// and the build stays a recipe.
    @Test func aPullIntoANonEmptyFolderIsRefusedAndTouchesNothing() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            let build = try test.store.createBuild(
                base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), 1)],
                tag: try Reference(parsing: "acme/merged"))
            let folder = directory.appending(path: "occupied")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data("mine".utf8).write(to: folder.appending(path: "notes.txt"))
            #expect(throws: StoreError.invalidInput(path: folder.path, reason: "exists and is not an empty folder")) {
                try test.store.pull("acme/merged", to: folder)
            }
            #expect(throws: StoreError.invalidInput(path: folder.path, reason: "exists and is not an empty folder")) {
                try test.store.merge(
                    base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), 1)], to: folder)
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["notes.txt"])
            let file = folder.appending(path: "notes.txt")
            #expect(throws: StoreError.invalidInput(path: file.path, reason: "is a file; a model is written into a new or empty folder")) {
                try test.store.pull("acme/merged", to: file)
            }
            #expect(try String(contentsOf: file, encoding: .utf8) == "mine")
            #expect(try test.store.materializedOutput(of: build) == nil)
        }
    }

    /// Pins are for builds; unpinning makes a build evictable again, and a budget change returns what it
    /// evicted.
    @Test func pinsApplyToBuildsAndUnpinningMakesThemEvictable() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            #expect(throws: StoreError.wrongKind(reference: "acme/a:latest", expected: .build, found: .adapter)) {
                try test.store.setPinned(try Reference(parsing: "acme/a"), true)
            }
            let build = try test.store.createBuild(
                base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), 1)],
                tag: try Reference(parsing: "acme/merged"))
            try test.store.setPinned(try Reference(parsing: "acme/merged"), true)
            try test.store.pull("acme/merged", to: directory.appending(path: "pulled"))
            #expect(try test.store.setCacheBudget(0).isEmpty, "pinned")
            #expect(try test.store.setPinned(try Reference(parsing: "acme/merged"), false) == [build], "unpinned, over the budget")
            #expect(!(try test.store.isMaterialized(build)))
        }
    }
}
