import Foundation
import LoraStoreClient
import LoraStoreCore
import Testing

/// Many clients at once against one server.
@Suite struct ConcurrencyTests {
    @Test func sixteenClientsPushingAndPulling() async throws {
        try await TestRegistry.with { registry in
            let client = registry.client()
            try await TestRegistry.seed(client)
            let base = try Reference(parsing: "micro/base:fp32")
            try await client.createBuild(
                tag: try Reference(parsing: "acme/merged:v2"), base: base,
                adapters: [(try Reference(parsing: "acme/a"), 1), (try Reference(parsing: "acme/b"), -0.5)])
            let folder = registry.directory
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<16 {
                    group.addTask {
                        let client = registry.client()
                        if index.isMultiple(of: 2) {
                            let fixture = Fixtures.fp32Adapters[(index / 2) % Fixtures.fp32Adapters.count]
                            try await client.push(
                                Fixtures.url("adapters/\(fixture)"), to: try Reference(parsing: "team/adapter-\(index)"),
                                options: PushOptions(base: base))
                        } else {
                            let build = index % 4 == 1 ? "acme/merged:v1" : "acme/merged:v2"
                            try await client.pull(build, to: folder.appending(path: "pull-\(index)"))
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try registry.store.list(kind: .adapter).count == 2 + 8)
            let v1 = try folderContents(folder.appending(path: "pull-1"))
            let v2 = try folderContents(folder.appending(path: "pull-3"))
            for index in stride(from: 1, to: 16, by: 2) {
                #expect(try folderContents(folder.appending(path: "pull-\(index)")) == (index % 4 == 1 ? v1 : v2))
            }
            let status = try registry.store.cacheStatus()
            #expect(status.builds.allSatisfy { $0.materializations == 1 })
            #expect(try registry.store.verify(deep: true).faults.isEmpty)
        }
    }
}
