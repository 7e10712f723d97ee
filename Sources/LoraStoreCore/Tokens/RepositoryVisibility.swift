/// Which repositories a reader may see: every one, or those one namespace pattern matches (`acme/*`, or one
/// repository name), as a registry token limited to a namespace allows.
///
/// Queries that span repositories take one, so that a reader limited to `acme/*` learns nothing of other
/// namespaces: listings, lineage, descriptions and storage figures keep only what it may see, and a manifest
/// or blob named by digest alone counts as there only when a repository it may see holds it (see
/// ``Store/resolve(_:visibleTo:)`` and ``Store/blobInfo(_:visibleTo:)``).
public struct RepositoryVisibility: Sendable, Hashable, CustomStringConvertible {
    /// The namespace pattern, or nil when every repository is visible.
    public let namespace: String?

    /// Every repository: a local store, a registry whose reads are open, a token for `*`.
    public static let all = RepositoryVisibility(pattern: nil)

    /// The repositories `namespace` matches, as ``AccessToken/namespace(_:matches:)`` decides; `*` is ``all``.
    public init(namespace: String) {
        self.init(pattern: namespace == "*" ? nil : namespace)
    }

    private init(pattern: String?) {
        namespace = pattern
    }

    /// Whether every repository is visible (queries then skip their checks).
    public var isAll: Bool { namespace == nil }

    /// Whether `repository` is visible.
    public func allows(_ repository: String) -> Bool {
        guard let namespace else { return true }
        return AccessToken.namespace(namespace, matches: repository)
    }

    public var description: String { namespace ?? "*" }
}
