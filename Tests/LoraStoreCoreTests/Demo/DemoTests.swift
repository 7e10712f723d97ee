import Foundation
import Testing
@testable import LoraStoreCore

@Suite("The demo")
struct DemoTests {
    @Test func runsTwiceReusingWhatItStoredAndItsTableIsTheStoresStats() throws {
        try TemporaryDirectory.with { directory in
            let store = try Store(root: directory.appending(path: "store"))
            let output = directory.appending(path: "merged")
            let scenario = DemoScenario(baseBytes: DemoScenario.minimumBaseBytes, output: output, replacesOutput: true)
            let first = try scenario.run(store: store)
            #expect(first.pushes.count == 5 && first.pushes.allSatisfy { $0.newBlobs > 0 })
            #expect(first.builds.count == 4)
            #expect(first.pull?.merged == true)
            #expect(try LoadedTensor.all(in: output).count > 0)
            #expect(first.stats == (try store.stats()), "the table printed is what `lorastore stats` prints")

            let second = try scenario.run(store: store)
            #expect(second.pushes.allSatisfy { $0.newBlobs == 0 }, "the second run stores nothing new")
            #expect(second.builds.map(\.digest) == first.builds.map(\.digest))
            #expect(second.pull?.merged == false, "the second pull comes from the cache")
            #expect(second.stats?.storedBytes == first.stats?.storedBytes)
            #expect(second.stats?.logicalBytes == first.stats?.logicalBytes)
        }
    }

    @Test func neverReplacesAFolderItDoesNotOwn() throws {
        try TemporaryDirectory.with { directory in
            let store = try Store(root: directory.appending(path: "store"))
            let precious = directory.appending(path: "precious")
            try FileManager.default.createDirectory(at: precious, withIntermediateDirectories: true)
            try Data("keep".utf8).write(to: precious.appending(path: "notes.txt"))
            #expect { try DemoScenario(baseBytes: DemoScenario.minimumBaseBytes, output: precious).run(store: store) } throws: {
                "\($0)".contains(precious.path) && "\($0)".contains("not empty")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: precious.path) == ["notes.txt"])
            #expect(try store.list(kind: nil).isEmpty, "it stopped before pushing anything")
            #expect { try DemoScenario(baseBytes: 1000, output: directory.appending(path: "new")).run(store: store) } throws: {
                "\($0)".contains("--size") && "\($0)".contains("too small")
            }
        }
    }
}
