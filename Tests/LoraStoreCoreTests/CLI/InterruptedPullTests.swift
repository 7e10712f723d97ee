import Foundation
import GRDB
import Testing
@testable import LoraStoreCore

/// A process killed in the middle of materializing a build leaves nothing a later pull would trust.
@Suite("Interrupted materialization")
struct InterruptedPullTests {
    @Test func aKilledPullLeavesARecipeThatTheNextPullMaterializesWhole() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let model = SyntheticModel(dimensions: .mini, layers: 24, dtype: .f32, seed: 3)
            _ = try model.write(to: directory.appending(path: "base"))
            try SyntheticAdapter(base: model, rank: 16, seed: 4).write(to: directory.appending(path: "adapter"))
            try test.store.push(directory.appending(path: "base"), to: try Reference(parsing: "synthetic/base"))
            try test.store.push(
                directory.appending(path: "adapter"), to: try Reference(parsing: "synthetic/lora"),
                options: PushOptions(base: try Reference(parsing: "synthetic/base")))
            let build = try test.store.createBuild(
                base: try Reference(parsing: "synthetic/base"), adapters: [(try Reference(parsing: "synthetic/lora"), 1)],
                tag: try Reference(parsing: "synthetic/merged"))
            // The changed tensors' blobs are staged as temporary files and published together at the end.
            func stagedBlobs() -> Int {
                (try? FileManager.default.contentsOfDirectory(atPath: test.store.blobs.temporaryDirectory.path).count) ?? 0
            }

            let (process, _) = try CommandLineTool.start([
                "pull", "synthetic/merged", "-o", directory.appending(path: "killed").path, "--store", test.store.root.path,
            ])
            let deadline = ContinuousClock.now + .seconds(60)
            while process.isRunning, stagedBlobs() < 3, ContinuousClock.now < deadline {
                usleep(2_000)
            }
            let killedMidway = process.isRunning
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try #require(killedMidway, "the pull finished before it could be interrupted")

            let (state, outputs) = try test.store.index.database.read { db in
                (
                    try String.fetchOne(db, sql: "SELECT state FROM build WHERE digest = ?", arguments: [build]),
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM build_output WHERE build_digest = ?", arguments: [build])
                )
            }
            #expect(state == "recipe" && outputs == 0, "nothing of the interrupted materialization is recorded")
            #expect(!FileManager.default.fileExists(atPath: directory.appending(path: "killed").path))
            #expect(try test.store.verify().faults.allSatisfy { $0.kind == .orphanFile || $0.kind == .strayTemporaryFile })
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).contains { name in
                let staging = StagingFolderName(parsing: name)
                return staging?.destination == "killed" && staging?.processID == process.processIdentifier
            })

            // The next pull to the same folder clears the killed one's staging folder.
            let pulled = try test.store.pull("synthetic/merged", to: directory.appending(path: "killed"))
            #expect(pulled.merged && !pulled.rebuilt)
            #expect(try !FileManager.default.contentsOfDirectory(atPath: directory.path).contains { $0.hasPrefix(".killed.") })
            try test.store.merge(
                base: try Reference(parsing: "synthetic/base"), adapters: [(try Reference(parsing: "synthetic/lora"), 1)],
                to: directory.appending(path: "reference"))
            #expect(
                try LoadedTensor.all(in: directory.appending(path: "killed"))
                    == LoadedTensor.all(in: directory.appending(path: "reference")))
            _ = try test.store.collectGarbage(grace: 0)
            #expect(try test.store.verify(deep: true).faults.isEmpty)
        }
    }
}
