import Foundation

/// A registry access token as the store keeps it: its id, scope and namespace, never its secret.
public struct AccessToken: Sendable, Hashable, Codable {
    /// A short public identifier (12 hex digits), used to list and revoke the token.
    public var id: String
    public var scope: TokenScope
    /// The repositories the token applies to: `*` (all), `acme/*` (every repository under `acme/`), or one
    /// repository name.
    public var namespace: String
    public var createdAt: Date
    /// When the token was revoked; a revoked token authenticates nothing.
    public var revokedAt: Date?

    /// Whether the token allows `scope` on `repository`. With nil (an operation that names no repository,
    /// such as listing or uploading a content-addressed blob) the scope alone decides.
    public func allows(_ scope: TokenScope, on repository: String?) -> Bool {
        guard revokedAt == nil, self.scope >= scope else { return false }
        guard let repository else { return true }
        return Self.namespace(namespace, matches: repository)
    }

    /// Whether a namespace pattern matches a repository name.
    public static func namespace(_ pattern: String, matches repository: String) -> Bool {
        if pattern == "*" { return true }
        if pattern.hasSuffix("/*") { return repository.hasPrefix(pattern.dropLast()) }
        return pattern == repository
    }

    /// Checks a namespace pattern: `*`, `NAME/*` or a repository name.
    public static func validate(namespace: String) throws(ReferenceError) {
        guard namespace != "*" else { return }
        let name = namespace.hasSuffix("/*") ? String(namespace.dropLast(2)) : namespace
        try Reference.validate(name: name, in: namespace)
    }
}

extension AccessToken {
    /// Writes every key, `revokedAt` as null for a live token, so scripts reading `token ls --json` find it.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(scope, forKey: .scope)
        try container.encode(namespace, forKey: .namespace)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(revokedAt, forKey: .revokedAt)
    }
}
