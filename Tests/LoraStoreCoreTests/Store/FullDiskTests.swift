import Foundation
import Testing
@testable import LoraStoreCore

/// A disk that fills during a push or a pull: the error says so and names the file, the store is left as
/// it was, a failed pull leaves nothing at its destination, and the store keeps working.
@Suite(
    "Full disk",
    .enabled(if: SmallFilesystem.isAvailable, "mounting a small tmpfs needs root where the container allows it"))
struct FullDiskTests {
    private let base = "micro/base:fp32"
    private let adapter = "acme/a"

    @Test func aPushThatFillsTheDiskFailsAndLeavesTheStoreAsItWas() throws {
        try SmallFilesystem.with(bytes: 3 << 20) { disk in
            let test = try TestStore(in: disk).withFP32Base()
            try TemporaryDirectory.with { directory in
                let folder = directory.appending(path: "large-base")
                // About 4 MiB of tensors, more than the disk has left.
                try SyntheticModel.sized(bytes: 4 << 20, dtype: .f32, seed: 5).write(to: folder)
                let before = try test.snapshot()
                let message = expectNoSpace { try test.store.push(folder, to: try Reference(parsing: "acme/large")) }
                #expect(message.contains(disk.path), "the message names the file it could not write: \(message)")
                #expect(
                    message.contains("while storing tensor \"") && message.contains(folder.path),
                    "the message names the tensor and the file it comes from: \(message)")
                #expect(try test.snapshot() == before, "the store changed")
            }
            // The space the failed push took is free again: a small push fits.
            try test.push("adapters/a_r8_qv", as: adapter, base: base)
        }
    }

    /// The store's disk fills while a first pull stores the build's changed tensors (a 16 KiB `q_proj` with
    /// 8 KiB left): nothing of the build stays in the store, and once there is room the pull merges it.
    @Test func aPullWhoseStoreFillsLeavesTheStoreAsItWas() throws {
        try SmallFilesystem.with(bytes: 4 << 20) { disk in
            let test = try TestStore(in: disk).withFP32BaseAndAdapterA()
            let build = try test.store.createBuild(
                base: try Reference(parsing: base), adapters: [(try Reference(parsing: adapter), 1)])
            let before = try test.snapshot()
            try SmallFilesystem.resize(disk, to: try SmallFilesystem.usedBytes(disk) + (8 << 10))
            try TemporaryDirectory.with { directory in
                let destination = directory.appending(path: "merged")
                let message = expectNoSpace { try test.store.pull(build.description, to: destination) }
                #expect(message.contains(test.store.root.path), "\(message)")
                #expect(!FileManager.default.fileExists(atPath: destination.path), "a partial folder was left")
                #expect(try test.snapshot() == before, "the store changed")
                #expect(try test.store.materializedOutput(of: build) == nil)

                try SmallFilesystem.resize(disk, to: 4 << 20)
                #expect(try test.store.pull(build.description, to: destination).merged)
            }
        }
    }

    /// The destination's disk fills in the middle of the first tensor the adapter changes, while that
    /// tensor's blob is stored: the blob is removed again and the destination left empty.
    @Test func aPullOntoAFullDiskLeavesNothingThereAndTheStoreAsItWas() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            let build = try test.store.createBuild(
                base: try Reference(parsing: base), adapters: [(try Reference(parsing: adapter), 1)])
            let room = try bytesBeforeTheMiddleOfTheFirstChangedTensor(test)
            let before = try test.snapshot()
            try SmallFilesystem.with(bytes: room) { disk in
                let message = expectNoSpace { try test.store.pull(build.description, to: disk.appending(path: "merged")) }
                #expect(message.contains("model.safetensors"), "\(message)")
                let left = try FileManager.default.contentsOfDirectory(atPath: disk.path)
                #expect(left.isEmpty, "a partial folder was left: \(left)")
            }
            #expect(try test.snapshot() == before, "the failed pull left blobs in the store")
            #expect(try test.store.materializedOutput(of: build) == nil, "a failed first pull left the build materialized")
            #expect(try test.store.pull(build.description, to: directory.appending(path: "merged")).merged)
        }
    }

    /// A command on a store whose disk is full says so and what to do, instead of SQLite's message alone
    /// (opening the index writes to it when its write-ahead log is empty), and works once there is room.
    @Test func aCommandOnAFullDiskSaysTheDiskIsFull() throws {
        try SmallFilesystem.with(bytes: 4 << 20) { disk in
            try TestStore(in: disk).withFP32BaseAndAdapterA().store.index.database.writeWithoutTransaction { db in
                try db.checkpoint(.truncate)
            }
            let store = disk.appending(path: "store").path
            try SmallFilesystem.resize(disk, to: try SmallFilesystem.usedBytes(disk) + (36 << 10))
            let full = try CommandLineTool.run(["ls", "--store", store])
            #expect(full.status == 1)
            #expect(
                full.output.contains("the disk holding the store's index is full") && full.output.contains("free space on it"),
                "\(full.output)")
            try SmallFilesystem.resize(disk, to: 4 << 20)
            let listed = try CommandLineTool.run(["ls", "--store", store])
            #expect(listed.status == 0 && listed.output.contains("acme/a"), "\(listed.output)")
        }
    }

    /// Runs `body` expecting an error that says the disk is full, and returns its message.
    private func expectNoSpace(
        _ body: () throws -> Any, sourceLocation: SourceLocation = #_sourceLocation
    ) -> String {
        do {
            _ = try body()
            Issue.record("it succeeded", sourceLocation: sourceLocation)
            return ""
        } catch {
            let message = "\(error)"
            #expect(message.contains("No space left on device"), "\(message)", sourceLocation: sourceLocation)
            return message
        }
    }

    /// The size of a disk on which a pull of the build writes its small files and its model file up to the
    /// middle of `layers.0.self_attn.q_proj` (the first tensor adapter `a` changes), from the layout of the
    /// same merge written elsewhere.
    private func bytesBeforeTheMiddleOfTheFirstChangedTensor(_ test: TestStore) throws -> Int {
        let page = 4096
        let sample = test.directory.appending(path: "layout-sample")
        defer { try? FileManager.default.removeItem(at: sample) }
        try test.store.merge(
            base: try Reference(parsing: base), adapters: [(try Reference(parsing: adapter), 1)], to: sample)
        var pages = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: sample.path) where name != "model.safetensors" {
            let size = try FileManager.default.attributesOfItem(atPath: sample.appending(path: name).path)[.size] as? Int ?? 0
            pages += (size + page - 1) / page
        }
        let model = try SafetensorsFile(contentsOf: sample.appending(path: "model.safetensors"))
        let tensor = try #require(model[name: "model.layers.0.self_attn.q_proj.weight"])
        let middle = model.dataOffset + tensor.dataRange.lowerBound + tensor.byteCount / 2
        return (pages + middle / page) * page
    }
}
