import GRDB

extension Store {
    /// The lineage of what `reference` names, both ways.
    ///
    /// Each list of related manifests is one query that joins their kinds and tags, so the lineage of a base
    /// with a hundred thousand adapters costs one pass over them rather than two queries per adapter.
    public func lineage(_ reference: Reference) throws -> Lineage {
        try index.database.read { db in
            let stored = try resolve(reference, in: db)
            var lineage = Lineage(
                subject: try nodes(selecting: "SELECT 0, ?1, NULL", [stored.digest], in: db)[0],
                base: try stored.manifest.base.map { try nodes(selecting: "SELECT 0, ?1, NULL", [$0], in: db)[0] },
                adapters: [], derivedAdapters: [], derivedBuilds: [])
            switch stored.kind {
            case .build:
                lineage.adapters = try nodes(
                    selecting: "SELECT position, adapter_digest, weight FROM build_adapter WHERE build_digest = ?1",
                    [stored.digest], in: db)
            case .adapter:
                lineage.derivedBuilds = try nodes(
                    selecting: "SELECT DISTINCT build_digest, build_digest, NULL FROM build_adapter WHERE adapter_digest = ?1",
                    [stored.digest], in: db)
            case .base:
                lineage.derivedAdapters = try nodes(
                    selecting: "SELECT manifest_digest, manifest_digest, NULL FROM adapter WHERE base_digest = ?1",
                    [stored.digest], in: db)
                lineage.derivedBuilds = try nodes(
                    selecting: "SELECT digest, digest, NULL FROM build WHERE base_digest = ?1", [stored.digest], in: db)
            }
            return lineage
        }
    }

    /// The lineage nodes of the manifests `sql` selects, as rows of (sort key, digest, weight or NULL), one
    /// node per sort key in its order, each with its kind (a base when the manifest is unknown) and its tags
    /// as `NAME:TAG` in order.
    private func nodes(selecting sql: String, _ arguments: StatementArguments, in db: Database) throws -> [Lineage.Node] {
        let rows = try Row.fetchCursor(
            db.cachedStatement(
                sql: """
                    WITH node(position, digest, weight) AS (\(sql))
                    SELECT node.position, node.digest, node.weight, manifest.kind, tag.repository || ':' || tag.name
                    FROM node
                    LEFT JOIN manifest INDEXED BY manifest_summary ON manifest.digest = node.digest
                    LEFT JOIN tag ON tag.manifest_digest = node.digest
                    ORDER BY 1, 5
                    """),
            arguments: arguments)
        var nodes: [Lineage.Node] = []
        var position: DatabaseValue?
        while let row = try rows.next() {
            let key: DatabaseValue = row[0]
            if key != position {
                position = key
                let kind: ManifestKind? = row[3]
                nodes.append(Lineage.Node(digest: row[1], kind: kind ?? .base, tags: [], weight: row[2]))
            }
            if let tag: String = row[4] {
                nodes[nodes.count - 1].tags.append(tag)
            }
        }
        return nodes
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
