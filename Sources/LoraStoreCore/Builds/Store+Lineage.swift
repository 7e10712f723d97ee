import GRDB

extension Store {
    /// The lineage of what `reference` names, both ways.
    public func lineage(_ reference: Reference) throws -> Lineage {
        try index.database.read { db in
            let stored = try resolve(reference, in: db)
            func node(_ digest: Digest, weight: Double? = nil) throws -> Lineage.Node {
                let kind = try ManifestKind.fetchOne(db, sql: "SELECT kind FROM manifest WHERE digest = ?", arguments: [digest])
                return Lineage.Node(digest: digest, kind: kind ?? .base, tags: try tags(of: digest, in: db), weight: weight)
            }
            var lineage = Lineage(
                subject: try node(stored.digest), base: try stored.manifest.base.map { try node($0) }, adapters: [],
                derivedAdapters: [], derivedBuilds: [])
            switch stored.kind {
            case .build:
                let rows = try Row.fetchAll(
                    db, sql: "SELECT adapter_digest, weight FROM build_adapter WHERE build_digest = ? ORDER BY position",
                    arguments: [stored.digest])
                lineage.adapters = try rows.map { try node($0["adapter_digest"], weight: $0["weight"]) }
            case .adapter:
                lineage.derivedBuilds = try Digest.fetchAll(
                    db, sql: "SELECT DISTINCT build_digest FROM build_adapter WHERE adapter_digest = ? ORDER BY build_digest",
                    arguments: [stored.digest]
                ).map { try node($0) }
            case .base:
                lineage.derivedAdapters = try Digest.fetchAll(
                    db, sql: "SELECT manifest_digest FROM adapter WHERE base_digest = ? ORDER BY manifest_digest",
                    arguments: [stored.digest]
                ).map { try node($0) }
                lineage.derivedBuilds = try Digest.fetchAll(
                    db, sql: "SELECT digest FROM build WHERE base_digest = ? ORDER BY digest", arguments: [stored.digest]
                ).map { try node($0) }
            }
            return lineage
        }
    }

    /// The builds made from a base or adapter, named by tag when they have one.
    func dependentBuilds(of digest: Digest, in db: Database) throws -> [String] {
        let builds = try Digest.fetchAll(
            db,
            sql: """
                SELECT digest FROM build WHERE base_digest = ?1
                UNION SELECT build_digest FROM build_adapter WHERE adapter_digest = ?1
                ORDER BY 1
                """,
            arguments: [digest])
        return try builds.map { try tags(of: $0, in: db).first ?? $0.description }
    }
}
