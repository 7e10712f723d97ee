import GRDB

extension Store {
    /// The lineage of what `reference` names, both ways.
    ///
    /// Each list of related manifests is one query that joins their kinds and tags, so the lineage of a base
    /// with a hundred thousand adapters costs one pass over them rather than two queries per adapter.
    ///
    /// With a `visibility` short of ``RepositoryVisibility/all``, the reference must be one the reader may see
    /// (``resolve(_:visibleTo:)``), every node lists only the tags of repositories it may see, and adapters
    /// and builds made from the subject appear only when visible. The subject's own inputs (its base, a
    /// build's adapters) stay, with their visible tags only: the subject's manifest names them already.
    public func lineage(_ reference: Reference, visibleTo visibility: RepositoryVisibility = .all) throws -> Lineage {
        try index.database.read { db in
            let stored = try resolve(reference, visibleTo: visibility, in: db)
            func related(_ sql: String, _ arguments: StatementArguments) throws -> [LineageNode] {
                try nodes(selecting: sql, arguments, visibleTo: visibility, in: db)
            }
            var lineage = Lineage(
                subject: try related("SELECT 0, ?1, NULL", [stored.digest])[0].node,
                base: try stored.manifest.base.map { try related("SELECT 0, ?1, NULL", [$0])[0].node },
                adapters: [], derivedAdapters: [], derivedBuilds: [])
            // The nodes a reader may see among those made from the subject.
            func visible(_ nodes: [LineageNode]) throws -> [Lineage.Node] {
                guard !visibility.isAll else { return nodes.map(\.node) }
                return try nodes.filter { found in
                    try !found.node.tags.isEmpty
                        || (!found.tagged && isUntaggedBuildVisible(found.node.digest, to: visibility, in: db))
                }.map(\.node)
            }
            switch stored.kind {
            case .build:
                lineage.adapters = try related(
                    "SELECT position, adapter_digest, weight FROM build_adapter WHERE build_digest = ?1", [stored.digest]
                ).map(\.node)
            case .adapter:
                lineage.derivedBuilds = try visible(
                    related(
                        "SELECT DISTINCT build_digest, build_digest, NULL FROM build_adapter WHERE adapter_digest = ?1",
                        [stored.digest]))
            case .base:
                lineage.derivedAdapters = try visible(
                    related("SELECT manifest_digest, manifest_digest, NULL FROM adapter WHERE base_digest = ?1", [stored.digest]))
                lineage.derivedBuilds = try visible(
                    related("SELECT digest, digest, NULL FROM build WHERE base_digest = ?1", [stored.digest]))
            }
            return lineage
        }
    }

    /// A lineage node with its visible tags, and whether any tag (visible or not) names it.
    private struct LineageNode {
        var node: Lineage.Node
        var tagged: Bool
    }

    /// The lineage nodes of the manifests `sql` selects, as rows of (sort key, digest, weight or NULL), one
    /// node per sort key in its order, each with its kind (a base when the manifest is unknown) and the tags
    /// of visible repositories as `NAME:TAG` in order.
    private func nodes(
        selecting sql: String, _ arguments: StatementArguments, visibleTo visibility: RepositoryVisibility, in db: Database
    ) throws -> [LineageNode] {
        let rows = try Row.fetchCursor(
            db.cachedStatement(
                sql: """
                    WITH node(position, digest, weight) AS (\(sql))
                    SELECT node.position, node.digest, node.weight, manifest.kind, tag.repository || ':' || tag.name,
                           tag.repository
                    FROM node
                    LEFT JOIN manifest INDEXED BY manifest_summary ON manifest.digest = node.digest
                    LEFT JOIN tag ON tag.manifest_digest = node.digest
                    ORDER BY 1, 5
                    """),
            arguments: arguments)
        var nodes: [LineageNode] = []
        var position: DatabaseValue?
        while let row = try rows.next() {
            let key: DatabaseValue = row[0]
            if key != position {
                position = key
                let kind: ManifestKind? = row[3]
                nodes.append(LineageNode(node: Lineage.Node(digest: row[1], kind: kind ?? .base, tags: [], weight: row[2]), tagged: false))
            }
            if let tag: String = row[4], let repository: String = row[5] {
                nodes[nodes.count - 1].tagged = true
                if visibility.allows(repository) { nodes[nodes.count - 1].node.tags.append(tag) }
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
