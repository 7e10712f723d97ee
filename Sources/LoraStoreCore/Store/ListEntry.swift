import Foundation

/// One tag in a listing, with what it points at.
public struct ListEntry: Sendable, Hashable, Codable {
    public var repository: String
    public var tag: String
    public var kind: ManifestKind
    public var digest: Digest
    /// Bytes of the model or adapter as plain files.
    public var logicalSize: Int
    public var updatedAt: Date
    /// For adapters: rank and the base digest.
    public var rank: Int?
    public var base: Digest?
}
