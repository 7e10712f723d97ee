import Foundation

/// The JSON bodies of the registry's HTTP API (see API.md), shared by the server and the client so both
/// sides always agree. Dates are ISO 8601; digests are `sha256:<hex>`.
public enum RegistryAPI {
    /// The API's path prefix.
    public static let prefix = "/api/v1"

    /// `POST /api/v1/blobs/missing`: the digests a client has, for a push to `repository` (whose namespace
    /// the token must cover, so a push that will be refused uploads nothing).
    public struct MissingBlobsRequest: Sendable, Hashable, Codable {
        public var repository: String
        public var digests: [Digest]
        public init(repository: String, digests: [Digest]) {
            self.repository = repository
            self.digests = digests
        }
    }

    /// The digests among the request's that the server lacks, in request order.
    public struct MissingBlobsResponse: Sendable, Hashable, Codable {
        public var missing: [Digest]
        public init(missing: [Digest]) { self.missing = missing }
    }

    /// `PUT /api/v1/blobs/{digest}`: what was stored.
    public struct BlobResponse: Sendable, Hashable, Codable {
        public var digest: Digest
        public var size: Int
        /// False when the server already had the blob.
        public var created: Bool
        public init(digest: Digest, size: Int, created: Bool) {
            self.digest = digest
            self.size = size
            self.created = created
        }
    }

    /// `GET /api/v1/bases?repository=NAME`: the base an adapter push to NAME uses when it names none.
    public struct BaseResponse: Sendable, Hashable, Codable {
        public var digest: Digest
        public init(digest: Digest) { self.digest = digest }
    }

    /// `POST /api/v1/builds`: a recipe to record and tag.
    public struct BuildRequest: Sendable, Hashable, Codable {
        /// `NAME[:TAG]`.
        public var tag: String
        /// A base reference.
        public var base: String
        public var adapters: [Adapter]
        public var options: MergeOptions
        /// Record the build even where an adapter was pushed against another model than `base` (absent:
        /// refused, `OTHER_BASE`).
        public var allowOtherBase: Bool?

        public struct Adapter: Sendable, Hashable, Codable {
            public var reference: String
            public var weight: Double
            public init(reference: String, weight: Double) {
                self.reference = reference
                self.weight = weight
            }
        }

        public init(tag: String, base: String, adapters: [Adapter], options: MergeOptions, allowOtherBase: Bool? = nil) {
            self.tag = tag
            self.base = base
            self.adapters = adapters
            self.options = options
            self.allowOtherBase = allowOtherBase
        }
    }

    /// The build a ``BuildRequest`` recorded.
    public struct BuildResponse: Sendable, Hashable, Codable {
        public var reference: String
        public var digest: Digest
        public init(reference: String, digest: Digest) {
            self.reference = reference
            self.digest = digest
        }
    }

    /// `GET /api/v1/files/{reference}`: a base, adapter or build as files (a build is materialized first).
    public struct FileList: Sendable, Hashable, Codable {
        public var digest: Digest
        public var kind: ManifestKind
        /// A reference that pins the manifest (`NAME@sha256:...`), for downloading the files.
        public var pinned: String
        public var files: [File]

        public struct File: Sendable, Hashable, Codable {
            public var name: String
            public var size: Int
            public var digest: Digest
            public init(name: String, size: Int, digest: Digest) {
                self.name = name
                self.size = size
                self.digest = digest
            }
        }

        public init(digest: Digest, kind: ManifestKind, pinned: String, files: [File]) {
            self.digest = digest
            self.kind = kind
            self.pinned = pinned
            self.files = files
        }
    }

    /// The encoder both sides use.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// The decoder both sides use.
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
