import Foundation
import GRDB
import Glibc
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import LoraStoreClient
import LoraStoreCore
@testable import LoraStoreServer
import Testing

/// Requests that must be refused with the right status and code, storing nothing.
@Suite struct BadRequestTests {
    /// What a store holds besides its index: blob files and anything left under tmp/.
    private static func leftovers(_ store: Store) throws -> Int {
        try store.blobs.allFiles().count + FileManager.default.contentsOfDirectory(atPath: store.blobs.temporaryDirectory.path).count
    }

    @Test func blobUploadsMustHashToTheirDigestAndFitTheLimit() async throws {
        try await RouterTest.with(RegistryConfiguration(maxBlobSize: 64, workerThreads: 2)) { client, store, admin in
            let before = try Self.leftovers(store)
            let auth: HTTPFields = [.authorization: "Bearer \(admin)"]
            let bytes = Array("some tensor bytes".utf8)
            let digest = Digest(of: bytes)
            let wrong = Digest(of: Array("other bytes".utf8))
            try await client.execute(
                uri: "/api/v1/blobs/\(wrong.hex)?repository=acme/x", method: .put, headers: auth, body: ByteBuffer(bytes: bytes)
            ) { response in
                #expect(response.status == .badRequest)
                #expect(RouterTest.code(of: response) == "DIGEST_MISMATCH")
            }
            let large = [UInt8](repeating: 7, count: 100)
            try await client.execute(
                uri: "/api/v1/blobs/\(Digest(of: large).hex)?repository=acme/x", method: .put, headers: auth, body: ByteBuffer(bytes: large)
            ) { response in
                #expect(response.status == .contentTooLarge)
                #expect(RouterTest.code(of: response) == "TOO_LARGE")
            }
            try await client.execute(uri: "/api/v1/blobs/\(digest.hex)?repository=acme/x", method: .put, body: ByteBuffer(bytes: bytes)) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(
                uri: "/api/v1/blobs/\(digest.hex)?repository=acme/x&float=I8", method: .put, headers: auth,
                body: ByteBuffer(bytes: bytes)
            ) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("float=I8"))
            }
            #expect(try store.missingBlobs(among: [digest, wrong, Digest(of: large)]).count == 3)
            #expect(try Self.leftovers(store) == before)
            try await client.execute(
                uri: "/api/v1/blobs/\(digest.hex)?repository=acme/x", method: .put, headers: auth, body: ByteBuffer(bytes: bytes)
            ) { response in
                #expect(response.status == .created)
            }
            try await client.execute(
                uri: "/api/v1/blobs/\(digest.hex)", method: .get, headers: [.range: "bytes=5-10"]
            ) { response in
                #expect(response.status == .partialContent)
                #expect(Array(buffer: response.body) == Array(bytes[5...10]))
                #expect(response.headers[.contentRange] == "bytes 5-10/\(bytes.count)")
                #expect(response.headers[.eTag] == "\"\(digest.hex)\"")
            }
            try await client.execute(uri: "/api/v1/blobs/\(digest.hex)", method: .get, headers: [.range: "bytes=500-"]) { response in
                #expect(response.status == .rangeNotSatisfiable)
            }
        }
    }

    /// A failure of the server's own (here a blob file gone from under the index) is a 500 whose message
    /// names nothing on the server: the full error goes to the log.
    @Test func theServersOwnFailuresNameNothingOnTheServer() async throws {
        try await RouterTest.with { client, store, _ in
            let digest = try #require(try store.resolve(try Reference(parsing: "micro/base:fp32")).manifest.tensors.first?.digest)
            try FileManager.default.removeItem(atPath: store.blobs.path(of: digest))
            try await client.execute(uri: "/api/v1/blobs/\(digest.hex)", method: .get) { response in
                #expect(response.status == .internalServerError)
                let (code, message) = try RouterTest.error(in: Data(buffer: response.body))
                #expect(code == "INTERNAL")
                #expect(!message.contains(store.root.path) && !message.contains(digest.hex), "\(message)")
            }
        }
    }

    /// A full disk on the server, met writing a blob or committing to the index, is 507 `STORAGE_FULL`,
    /// saying what happened and naming nothing on the server.
    @Test func aFullDiskIsInsufficientStorage() throws {
        let path = "/srv/lorastore/store/tmp/0123.42.7"
        let errors: [any Error] = [
            FileAccessError(operation: .write, path: path, code: ENOSPC, reason: "No space left on device, while storing x"),
            FileAccessError(operation: .sync, path: path, code: EDQUOT, reason: "Disk quota exceeded"),
            DatabaseError(resultCode: .SQLITE_FULL, message: "database or disk is full"),
        ]
        for error in errors {
            let answer = RegistryError(translating: error)
            #expect(answer.status.code == 507 && answer.code == "STORAGE_FULL", "\(error)")
            #expect(answer.message.contains("disk is full") && !answer.message.contains("/srv"), "\(answer.message)")
        }
        #expect(RegistryError(translating: FileAccessError(operation: .write, path: path, code: EIO, reason: "I/O error")).status == .internalServerError)
    }

    @Test func namesAndPathsCannotLeaveTheStore() async throws {
        try await RouterTest.with { client, store, admin in
            let auth: HTTPFields = [.authorization: "Bearer \(admin)"]
            let before = try store.list()
            // A manifest whose file name climbs out of the model folder.
            let config = Array("{}".utf8)
            try await client.execute(
                uri: "/api/v1/blobs/\(Digest(of: config).hex)?repository=evil/model", method: .put, headers: auth, body: ByteBuffer(bytes: config))
            for path in ["../escape.json", "sub/dir.json", ".hidden", ".."] {
                let manifest = Manifest(kind: .base, tensors: [], files: [FileEntry(path: path, digest: Digest(of: config), size: 2)])
                try await client.execute(
                    uri: "/api/v1/manifests/evil/model:latest", method: .put, headers: auth,
                    body: ByteBuffer(bytes: try manifest.canonicalJSON())
                ) { response in
                    #expect(response.status == .badRequest)
                    #expect(RouterTest.code(of: response) == "UNSAFE_NAME")
                }
            }
            for uri in ["/api/v1/manifests/../../etc:latest", "/api/v1/manifests/evil/..:latest", "/api/v1/show/..%2F..%2Findex"] {
                try await client.execute(uri: uri, method: .get, headers: auth) { response in
                    #expect(response.status == .badRequest || response.status == .notFound, "\(uri)")
                }
            }
            for name in ["..", "..%2Findex.sqlite", "%2E%2E%2F%2E%2E%2Findex.sqlite", ".hidden"] {
                try await client.execute(uri: "/api/v1/file/\(name)?ref=acme/a", method: .get) { response in
                    #expect(response.status == .notFound, "\(name)")
                }
                try await client.execute(uri: "/acme/a/resolve/main/\(name)", method: .get) { response in
                    #expect(response.status == .notFound, "\(name)")
                    #expect(response.headers[HTTPField.Name("X-Error-Code")!] == "EntryNotFound")
                }
            }
            #expect(try store.list() == before)
        }
    }

    /// The listing's kind is read singular or plural (as `lorastore ls` spells it), and nothing else.
    @Test func listingKindsAreSingularOrPlural() async throws {
        try await RouterTest.with { client, _, _ in
            for kind in ["adapter", "adapters"] {
                try await client.execute(uri: "/api/v1/list?kind=\(kind)", method: .get) { response in
                    #expect(response.status == .ok)
                    let entries = try RegistryAPI.decoder().decode([ListEntry].self, from: Data(buffer: response.body))
                    #expect(entries.map(\.repository) == ["acme/a"], "\(kind)")
                }
            }
            for kind in ["basex", "s", "adapterss"] {
                try await client.execute(uri: "/api/v1/list?kind=\(kind)", method: .get) { response in
                    #expect(response.status == .badRequest, "\(kind)")
                }
            }
        }
    }

    @Test func unknownReferencesAreNotFound() async throws {
        try await RouterTest.with { client, _, _ in
            try await client.execute(uri: "/api/v1/show/acme/nothing:latest", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(RouterTest.code(of: response) == "NOT_FOUND")
                // Slashes stay as they are, for people reading the answer raw (curl).
                #expect(String(buffer: response.body).contains("acme/nothing:latest"))
            }
            try await client.execute(uri: "/api/v1/files/acme/a:v9", method: .get) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/api/v1/show/Not%20A%20Name", method: .get) { response in
                #expect(response.status == .badRequest)
                #expect(RouterTest.code(of: response) == "INVALID_REFERENCE")
            }
            let errorCode = HTTPField.Name("X-Error-Code")!
            try await client.execute(uri: "/api/models/acme/nothing/revision/main", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[errorCode] == "RepoNotFound")
            }
            try await client.execute(uri: "/api/models/acme/a/revision/v9", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[errorCode] == "RevisionNotFound")
            }
            try await client.execute(uri: "/acme/a/resolve/main/missing.json", method: .head) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[errorCode] == "EntryNotFound")
            }
        }
    }

    /// A client that announces 4096 bytes, sends 1000 and hangs up leaves no blob, row or spool file. The
    /// connection stays open until the server is seen spooling, so the checks after the hang-up cannot pass
    /// before the server has even started the upload.
    @Test func truncatedUploadStoresNothing() async throws {
        try await TestRegistry.with { registry in
            let bytes = [UInt8](repeating: 3, count: 4096)
            let digest = Digest(of: bytes)
            let port = try #require(registry.endpoint.port)
            let connection = try RawConnection.open(port: port)
            try RawConnection.write(Array(Self.uploadHead(digest, size: bytes.count, token: registry.adminToken).utf8) + bytes.prefix(1000), to: connection)
            let spooling = try await Self.waitUntil { !Self.isTemporaryEmpty(registry.store) }
            close(connection)
            #expect(spooling, "the upload is spooling")
            #expect(try await Self.waitUntil { Self.isTemporaryEmpty(registry.store) }, "the hang-up removed the spool file")
            #expect(try registry.store.missingBlobs(among: [digest]) == [digest])
            #expect(try registry.store.blobs.allFiles().isEmpty)
        }
    }

    @Test func aStalledUploadIsDroppedAfterTheIdleTimeout() async throws {
        try await TestRegistry.with(RegistryConfiguration(idleTimeout: .seconds(1))) { registry in
            let bytes = [UInt8](repeating: 5, count: 4096)
            let digest = Digest(of: bytes)
            let port = try #require(registry.endpoint.port)
            // The client stops sending and keeps the connection open: the idle timeout ends the upload.
            let stalled = try RawConnection.open(port: port)
            defer { close(stalled) }
            try RawConnection.write(Array(Self.uploadHead(digest, size: bytes.count, token: registry.adminToken).utf8) + bytes.prefix(1000), to: stalled)
            #expect(try await Self.waitUntil { !Self.isTemporaryEmpty(registry.store) }, "the upload is spooling")
            #expect(try await Self.waitUntil { Self.isTemporaryEmpty(registry.store) }, "the stalled upload gave up its spool file")
            #expect(try registry.store.missingBlobs(among: [digest]) == [digest])
        }
    }

    /// The head of a blob upload that announces `size` bytes.
    private static func uploadHead(_ digest: Digest, size: Int, token: String) -> String {
        "PUT /api/v1/blobs/\(digest.hex)?repository=acme/x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nContent-Length: \(size)\r\n\r\n"
    }

    /// Polls `condition` every 20 ms for up to 20 s (a loaded CI machine may be slow); returns whether it held.
    private static func waitUntil(_ condition: () throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try condition()
    }

    @Test func oversizedJSONIsTooLargeAndNoTokenIsAskedForBeforeTheBody() async throws {
        try await RouterTest.with { client, _, admin in
            let huge = ByteBuffer(bytes: [UInt8](repeating: UInt8(ascii: " "), count: (16 << 20) + 1))
            try await client.execute(
                uri: "/api/v1/blobs/missing", method: .post, headers: [.authorization: "Bearer \(admin)"], body: huge
            ) { response in
                #expect(response.status == .contentTooLarge)
                #expect(RouterTest.code(of: response) == "TOO_LARGE")
            }
            for uri in ["/api/v1/blobs/missing", "/api/v1/builds"] {
                try await client.execute(uri: uri, method: .post, body: ByteBuffer(string: "x")) { response in
                    #expect(response.status == .unauthorized, "\(uri)")
                }
            }
        }
    }

    private static func isTemporaryEmpty(_ store: Store) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: store.blobs.temporaryDirectory.path)) ?? []).isEmpty
    }
}

/// A plain TCP connection to 127.0.0.1, for requests no HTTP client would send.
enum RawConnection {
    /// A connected socket; the caller closes it.
    static func open(port: Int) throws -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socket)
            throw POSIXError(.ECONNREFUSED)
        }
        return socket
    }

    /// Sends all of `bytes` on a connected socket.
    static func write(_ bytes: [UInt8], to socket: Int32) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, 0) }
            guard sent > 0 else { throw POSIXError(.EIO) }
            offset += sent
        }
    }
}
