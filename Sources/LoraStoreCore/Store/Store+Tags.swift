import Foundation
import GRDB

extension Store {
    /// Points `repository:tag` at a manifest, creating the repository (of the manifest's kind) if needed.
    /// Returns the digest the tag pointed at before.
    @discardableResult
    func tagManifest(
        _ digest: Digest, kind: ManifestKind, repository: String, tag: String, in db: Database,
        now: TimeInterval = Date().timeIntervalSince1970
    ) throws -> Digest? {
        // Cached statements: a batch push tags thousands of manifests in one transaction.
        if let holds = try ManifestKind.fetchOne(
            db.cachedStatement(sql: "SELECT kind FROM repository WHERE name = ?"), arguments: [repository])
        {
            guard holds == kind else { throw StoreError.repositoryKind(repository: repository, holds: holds, pushed: kind) }
        } else {
            try db.cachedStatement(sql: "INSERT INTO repository (name, kind, created_at) VALUES (?, ?, ?)")
                .execute(arguments: [repository, kind, now])
        }
        let previous = try Digest.fetchOne(
            db.cachedStatement(sql: "SELECT manifest_digest FROM tag WHERE repository = ? AND name = ?"),
            arguments: [repository, tag])
        try db.cachedStatement(
            sql: """
                INSERT INTO tag (repository, name, manifest_digest, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (repository, name) DO UPDATE SET manifest_digest = excluded.manifest_digest, updated_at = excluded.updated_at
                """
        ).execute(arguments: [repository, tag, digest, now])
        return previous
    }

    /// Tags what `source` points at as `destination` (a tag reference).
    @discardableResult
    public func tag(_ source: Reference, as destination: Reference) throws -> Digest {
        guard let repository = destination.repository, let tag = destination.tag else {
            throw StoreError.invalidInput(path: destination.description, reason: "a tag is written NAME[:TAG]")
        }
        return try index.database.write { db in
            let stored = try resolve(source, in: db)
            try tagManifest(stored.digest, kind: stored.kind, repository: repository, tag: tag, in: db)
            return stored.digest
        }
    }

    /// Removes a tag (or, for `NAME@sha256:...`, every tag of NAME pointing at that digest). Blobs stay until
    /// garbage collection finds them unreferenced. Returns the tags removed.
    ///
    /// Removing the last name of a base or adapter that builds are made from is refused unless `force`: the
    /// error lists the builds. (Forced, the builds keep its bytes alive by digest.)
    @discardableResult
    public func untag(_ reference: Reference, force: Bool = false) throws -> [String] {
        try index.database.write { db in
            guard let repository = reference.repository else {
                throw StoreError.invalidInput(path: reference.description, reason: "name the repository: NAME[:TAG] or NAME@sha256:...")
            }
            let tags: [String]
            switch reference.selector {
            case .tag(let tag):
                tags = try String.fetchAll(db, sql: "SELECT name FROM tag WHERE repository = ? AND name = ?", arguments: [repository, tag])
            case .digest(let digest):
                tags = try String.fetchAll(
                    db, sql: "SELECT name FROM tag WHERE repository = ? AND manifest_digest = ? ORDER BY name",
                    arguments: [repository, digest])
            }
            guard !tags.isEmpty else { throw StoreError.notFound(reference.description) }
            let digest = try resolve(reference, in: db).digest
            let otherTags = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM tag WHERE manifest_digest = ?", arguments: [digest]) ?? 0
            if !force, otherTags == tags.count {
                let builds = try dependentBuilds(of: digest, in: db)
                if !builds.isEmpty { throw StoreError.inUse(reference: reference.description, builds: builds) }
            }
            for tag in tags {
                try db.execute(sql: "DELETE FROM tag WHERE repository = ? AND name = ?", arguments: [repository, tag])
            }
            let remaining = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tag WHERE repository = ?", arguments: [repository]) ?? 0
            if remaining == 0 {
                try db.execute(sql: "DELETE FROM repository WHERE name = ?", arguments: [repository])
            }
            return tags.map { "\(repository):\($0)" }
        }
    }

    /// Whether the index has a row for the blob.
    func isIndexed(_ digest: Digest, in db: Database) throws -> Bool {
        try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM blob WHERE digest = ?)"), arguments: [digest]) ?? false
    }

    /// The digests among `digests` that the index has.
    func indexedBlobs(among digests: some Sequence<Digest>, in db: Database) throws -> Set<Digest> {
        try Set(digests.filter { try isIndexed($0, in: db) })
    }
}
