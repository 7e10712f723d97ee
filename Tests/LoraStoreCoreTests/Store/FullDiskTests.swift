import Foundation
import Testing
@testable import LoraStoreCore

/// A disk that fills during a push or a pull: the error says so and names the file, and the store is left
/// as it was (a failed push) or the destination holds nothing (a failed pull), and the store keeps working.
@Suite(
    "Full disk",
    .enabled(if: SmallFilesystem.isAvailable, "mounting a small tmpfs needs root where the container allows it"))
struct FullDiskTests {
    @Test func aPushThatFillsTheDiskFailsAndLeavesTheStoreAsItWas() throws {
        try SmallFilesystem.with(bytes: 3 << 20) { disk in
            let test = try TestStore(in: disk).withFP32Base()
            try TemporaryDirectory.with { directory in
                let folder = directory.appending(path: "large-base")
                // About 4 MiB of tensors, more than the disk has left.
                try SyntheticModel.sized(bytes: 4 << 20, dtype: .f32, seed: 5).write(to: folder)
                let before = try test.snapshot()
                let error = #expect(throws: (any Error).self) {
                    try test.store.push(folder, to: try Reference(parsing: "acme/large"))
                }
                let message = error.map { "\($0)" } ?? ""
                #expect(message.contains("No space left on device"), "\(message)")
                #expect(message.contains(disk.path), "the message names the file it could not write: \(message)")
                #expect(try test.snapshot() == before, "the store changed")
            }
            // The space the failed push took is free again: a small push fits.
            try test.push("adapters/a_r8_qv", as: "acme/a", base: "micro/base:fp32")
        }
    }

    @Test func aPullOntoAFullDiskFailsAndLeavesNothingThere() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            let build = try test.store.createBuild(
                base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), 1)])
            try SmallFilesystem.with(bytes: 256 << 10) { disk in
                let destination = disk.appending(path: "merged")
                let error = #expect(throws: (any Error).self) {
                    try test.store.pull(build.description, to: destination)
                }
                let message = error.map { "\($0)" } ?? ""
                #expect(message.contains("No space left on device"), "\(message)")
                let left = try FileManager.default.contentsOfDirectory(atPath: disk.path)
                #expect(left.isEmpty, "a partial folder was left: \(left)")
            }
            #expect(try test.store.materializedOutput(of: build) == nil, "a failed first pull left the build materialized")
            // The store still merges the build, to a disk with room.
            let result = try test.store.pull(build.description, to: directory.appending(path: "merged"))
            #expect(result.merged)
        }
    }
}
