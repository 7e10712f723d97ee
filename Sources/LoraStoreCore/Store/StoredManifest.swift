import Foundation

/// A manifest as the index holds it.
public struct StoredManifest: Sendable, Hashable {
    public let digest: Digest
    public let kind: ManifestKind
    public let manifest: Manifest
    public let createdAt: Date
}
