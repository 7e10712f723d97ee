import Foundation
import GRDB
import LoraStoreClient
import LoraStoreCore
import LoraStoreServer
import Testing

/// Tokens: pushes need a push token for the namespace; reads are open unless the server requires tokens;
/// a refused request changes nothing.
@Suite struct AuthorizationTests {
    private func expectStatus(_ status: Int, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("expected status \(status), got success")
        } catch RegistryClientError.server(let actual, _, _) {
            #expect(actual == status)
        } catch {
            Issue.record("expected status \(status), got \(error)")
        }
    }

    @Test func pushesNeedAPushTokenForTheNamespace() async throws {
        try await TestRegistry.with { registry in
            let base = Fixtures.url("base_fp32")
            let reference = try Reference(parsing: "acme/base")
            await expectStatus(401) { try await registry.client(token: .some(nil)).push(base, to: reference) }
            await expectStatus(401) { try await registry.client(token: "lst_wrong").push(base, to: reference) }
            let reader = try registry.store.createToken(scope: .read)
            await expectStatus(403) { try await registry.client(token: reader.secret).push(base, to: reference) }
            let other = try registry.store.createToken(scope: .push, namespace: "other/*")
            await expectStatus(403) { try await registry.client(token: other.secret).push(base, to: reference) }
            #expect(try registry.store.list().isEmpty)
            #expect(try registry.store.blobs.allFiles().isEmpty)

            let pusher = try registry.store.createToken(scope: .push, namespace: "acme/*")
            try await registry.client(token: pusher.secret).push(base, to: reference)
            try registry.store.revokeToken(id: pusher.token.id)
            await expectStatus(401) {
                try await registry.client(token: pusher.secret).push(base, to: try Reference(parsing: "acme/again"))
            }
            #expect(try registry.store.list().map(\.repository) == ["acme/base"])
            // Reads are open by default.
            #expect(try await registry.client(token: .some(nil)).list().count == 1)
            // A secret that is not a lorastore one (huggingface_hub sends a logged-in user's huggingface.co
            // token to any endpoint) reads as no token: open reads work, pushes still need a lorastore token.
            let huggingFace = registry.client(token: "hf_UserLoggedInToTheHub")
            #expect(try await huggingFace.list().count == 1)
            await expectStatus(401) { try await huggingFace.push(base, to: try Reference(parsing: "acme/hub")) }
        }
    }

    @Test func readsCanRequireAToken() async throws {
        try await TestRegistry.with(RegistryConfiguration(requireTokenForReads: true)) { registry in
            try await registry.client().push(Fixtures.url("base_fp32"), to: try Reference(parsing: "micro/base"))
            await expectStatus(401) { _ = try await registry.client(token: .some(nil)).list() }
            let reader = try registry.store.createToken(scope: .read, namespace: "micro/*")
            #expect(try await registry.client(token: reader.secret).list().count == 1)
            let elsewhere = try registry.store.createToken(scope: .read, namespace: "acme/*")
            await expectStatus(403) {
                _ = try await registry.client(token: elsewhere.secret).describe(try Reference(parsing: "micro/base"))
            }
        }
    }

    @Test func tokensKeepOnlyTheirHash() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "lorastore-tokens-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try Store(root: directory)
        let created = try store.createToken(scope: .push, namespace: "acme/*")
        #expect(created.secret.hasPrefix("lst_"))
        // The row holds the secret's SHA-256 and no column holds the secret itself; nor does any index file
        // (the commit may still be in the write-ahead log).
        let row = try #require(try store.index.database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM token WHERE id = ?", arguments: [created.token.id])
        })
        #expect(row["secret_hash"] as String == Digest(of: Array(created.secret.utf8)).hex)
        #expect(row.databaseValues.allSatisfy { String.fromDatabaseValue($0) != created.secret })
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("index.sqlite") }
        #expect(files.contains("index.sqlite-wal"))
        for file in files {
            #expect(try Data(contentsOf: directory.appending(path: file)).range(of: Data(created.secret.utf8)) == nil, "\(file)")
        }
        #expect(try store.authenticate(secret: created.secret)?.id == created.token.id)
        #expect(try store.tokens().map(\.id) == [created.token.id])
        #expect(created.token.allows(.push, on: "acme/bot"))
        #expect(!created.token.allows(.push, on: "acmeother/bot"))
        #expect(!created.token.allows(.admin, on: "acme/bot"))
        #expect(throws: (any Error).self) { try store.createToken(scope: .read, namespace: "../*") }
    }
}
