import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import LoraStoreCore
@testable import LoraStoreServer
import Testing

/// The Hub routes' answers as huggingface_hub reads them, checked without Python: revision info, the file
/// tree with LFS entries, and file downloads with their headers, ranges and HEAD.
@Suite struct HubRoutesTests {
    private struct Info: Decodable {
        struct Sibling: Decodable { var rfilename: String }
        var id: String
        var sha: String
        var siblings: [Sibling]
    }

    private struct Entry: Decodable {
        struct LFS: Decodable { var oid: String; var size: Int }
        var type: String
        var oid: String
        var size: Int
        var path: String
        var lfs: LFS?
    }

    @Test func aBuildIsServedAsTheMergedModelWithHubHeaders() async throws {
        try await RouterTest.with { client, store, _ in
            let build = try store.createBuild(
                base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), 0.5)],
                tag: try Reference(parsing: "acme/merged:v1"))
            let commit = String(build.hex.prefix(40))
            let info = try await client.execute(uri: "/api/models/acme/merged/revision/v1", method: .get) { response in
                #expect(response.status == .ok)
                return try JSONDecoder().decode(Info.self, from: Data(buffer: response.body))
            }
            #expect(info.id == "acme/merged" && info.sha == commit)
            // Without a revision (huggingface_hub's model_info and repo_exists), `main`: the tag main, else
            // latest, else the newest tag; an unknown repository is RepoNotFound, which repo_exists reads.
            try await client.execute(uri: "/api/models/acme/a", method: .get) { response in
                #expect(response.status == .ok)
                let adapter = try JSONDecoder().decode(Info.self, from: Data(buffer: response.body))
                #expect(adapter.id == "acme/a" && adapter.siblings.contains { $0.rfilename == "adapter_model.safetensors" })
            }
            try await client.execute(uri: "/api/models/acme/merged", method: .get) { response in
                #expect(response.status == .ok)
                let latest = try JSONDecoder().decode(Info.self, from: Data(buffer: response.body))
                #expect(latest.sha == commit)
            }
            try await client.execute(uri: "/api/models/acme/nothing", method: .get) { response in
                #expect(response.status == .notFound && response.headers[.xErrorCode] == "RepoNotFound")
            }
            #expect(Set(info.siblings.map(\.rfilename)) == ["config.json", "generation_config.json", "model.safetensors"])

            let tree = try await client.execute(uri: "/api/models/acme/merged/tree/\(commit)", method: .get) { response in
                #expect(response.status == .ok)
                return try JSONDecoder().decode([Entry].self, from: Data(buffer: response.body))
            }
            let local = store.root.deletingLastPathComponent().appending(path: "pulled")
            try store.pull("acme/merged:v1", to: local)
            let weights = try Data(contentsOf: local.appending(path: "model.safetensors"))
            let entry = try #require(tree.first { $0.path == "model.safetensors" })
            #expect(entry.size == weights.count && entry.lfs?.oid == Digest(of: weights).hex && entry.lfs?.size == weights.count)
            let config = try #require(tree.first { $0.path == "config.json" })
            let configBytes = try Data(contentsOf: local.appending(path: "config.json"))
            #expect(config.lfs == nil && config.size == configBytes.count)

            try await client.execute(uri: "/acme/merged/resolve/main/model.safetensors", method: .head) { response in
                #expect(response.status == .notFound, "main is the tag main, else latest; this build has only v1")
            }
            try await client.execute(uri: "/acme/merged/resolve/v1/model.safetensors", method: .head) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.xRepoCommit] == commit)
                #expect(response.headers[.eTag] == "\"\(Digest(of: weights).hex)\"")
                #expect(response.headers[.xLinkedEtag] == "\"\(Digest(of: weights).hex)\"")
                #expect(response.headers[.xLinkedSize] == String(weights.count))
                #expect(response.headers[.contentLength] == String(weights.count))
                #expect(response.body.readableBytes == 0)
            }
            try await client.execute(uri: "/acme/merged/resolve/v1/model.safetensors", method: .get) { response in
                #expect(response.status == .ok)
                #expect(Data(buffer: response.body) == weights)
            }
            try await client.execute(
                uri: "/acme/merged/resolve/\(commit)/model.safetensors", method: .get, headers: [.range: "bytes=100-199"]
            ) { response in
                #expect(response.status == .partialContent)
                #expect(response.headers[.contentRange] == "bytes 100-199/\(weights.count)")
                #expect(Data(buffer: response.body) == weights[100..<200])
            }
            try await client.execute(
                uri: "/acme/merged/resolve/v1/model.safetensors", method: .get, headers: [.range: "bytes=\(weights.count)-"]
            ) { response in
                #expect(response.status == .rangeNotSatisfiable)
            }
            try await client.execute(uri: "/api/models/acme/merged/tree/v1/no-such-folder", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.xErrorCode] == "EntryNotFound")
            }
        }
    }

    /// Ranges as RFC 9110 reads them: a suffix of an empty file, or a start past the end, cannot be
    /// satisfied; anything that is not one byte range is ignored (the whole file is sent).
    @Test func rangesAreReadAsTheHTTPStandardSays() {
        #expect(FileResponder.parseRange("bytes=0-9", size: 100) == .some(0..<10))
        #expect(FileResponder.parseRange("bytes=-10", size: 100) == .some(90..<100))
        #expect(FileResponder.parseRange("bytes=90-", size: 100) == .some(90..<100))
        #expect(FileResponder.parseRange("bytes=95-200", size: 100) == .some(95..<100))
        #expect(FileResponder.parseRange("bytes=0-\(Int.max)", size: 100) == .some(0..<100), "a last byte at Int.max must not overflow")
        #expect(FileResponder.parseRange("bytes=-\(Int.max)", size: 100) == .some(0..<100))
        #expect(FileResponder.parseRange("bytes=100-", size: 100) == nil)
        #expect(FileResponder.parseRange("bytes=-5", size: 0) == nil)
        #expect(FileResponder.parseRange("bytes=0-1,5-6", size: 100) == .some(nil))
        #expect(FileResponder.parseRange("items=0-1", size: 100) == .some(nil))
    }
}
