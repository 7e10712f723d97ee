import Foundation
import GRDB
import Testing
@testable import LoraStoreCore

/// `ls`, `show` and `lineage` on a store with many entries give what the straightforward per-row queries
/// give (the oracle below is how the index answered before it joined and batched its queries).
@Suite("Listing and lineage at scale")
struct ListingAtScaleTests {
    /// A store with two bases, 240 adapters (some with several tags, one untagged), and builds of one or
    /// two adapters (one using an adapter twice, some untagged).
    private static func populated(in directory: URL) throws -> (store: Store, references: [Reference]) {
        // Every tenth adapter lands in one repository whose name sorts before the others' prefix.
        func adapter(_ base: Int, _ index: Int) throws -> Reference {
            try Reference(parsing: index % 10 == 0 ? "team-\(base)/x:v\(index)" : "team\(base)/a\(index):v\(index)")
        }
        let store = try Store(root: directory.appending(path: "store"))
        var references: [Reference] = []
        for (index, seed) in [UInt64(7), 8].enumerated() {
            let model = SyntheticModel(dimensions: .micro, layers: 1, dtype: .bf16, seed: seed)
            let folder = directory.appending(path: "base-\(index)")
            try model.write(to: folder)
            let base = try Reference(parsing: "synthetic/base-\(index)")
            try store.push(folder, to: base)
            references.append(base)
            var items: [PushItem] = []
            for number in 0..<120 {
                let folder = directory.appending(path: "adapters-\(index)/\(number)")
                try SyntheticAdapter(base: model, rank: 1 + number % 3, targets: [.query], seed: UInt64(1000 * index + number))
                    .write(to: folder)
                items.append(PushItem(path: folder, reference: try adapter(index, number)))
            }
            try store.push(items, options: PushOptions(base: base))
            references += items.map(\.reference)
        }
        for number in stride(from: 1, to: 120, by: 7) {
            try store.tag(try adapter(0, number), as: try Reference(parsing: "extra/a\(number):alias"))
        }
        for build in 0..<60 {
            let base = try Reference(parsing: "synthetic/base-\(build % 2)")
            let first = try adapter(build % 2, 1 + build % 9)
            let second = try adapter(build % 2, 10 + build % 13)
            let adapters: [(reference: Reference, weight: Double)] = build % 5 == 0
                ? [(first, 0.5), (first, 0.25)] : build % 2 == 0 ? [(first, 1)] : [(first, 0.75), (second, 0.5)]
            let tag = build % 4 == 3 ? nil : try Reference(parsing: "builds/b\(build):v1")
            let digest = try store.createBuild(base: base, adapters: adapters, tag: tag)
            references.append(try tag ?? Reference(parsing: digest.description))
        }
        let untagged = try Reference(parsing: "team1/a5:v5")
        let untaggedDigest = try store.resolve(untagged).digest
        try store.untag(untagged, force: true)
        references = try references.map { $0 == untagged ? try Reference(parsing: untaggedDigest.description) : $0 }
        return (store, references)
    }

    @Test func lineageMatchesThePerRowQueries() throws {
        try TemporaryDirectory.with { directory in
            let (store, references) = try Self.populated(in: directory)
            for reference in references {
                #expect(try store.lineage(reference) == Oracle.lineage(reference, in: store), "\(reference)")
            }
            let base = try store.lineage(try Reference(parsing: "synthetic/base-0"))
            #expect(base.derivedAdapters.count == 120 && base.derivedBuilds.count > 10)
        }
    }

    @Test func listingAndShowMatchThePerRowQueries() throws {
        try TemporaryDirectory.with { directory in
            let (store, references) = try Self.populated(in: directory)
            for kind in [nil, ManifestKind.base, .adapter, .build] {
                #expect(try store.list(kind: kind) == Oracle.list(kind: kind, in: store), "\(kind.map(\.rawValue) ?? "all")")
            }
            for reference in references {
                let shown = try store.describe(reference)
                #expect(shown.tags == (try Oracle.tags(of: shown.digest, in: store)), "\(reference)")
            }
        }
    }

    /// The index's answers as one query per row would give them.
    private enum Oracle {
        static func tags(of digest: Digest, in store: Store) throws -> [String] {
            try store.index.database.read { db in try tags(of: digest, db) }
        }

        static func tags(of digest: Digest, _ db: Database) throws -> [String] {
            try String.fetchAll(
                db, sql: "SELECT repository || ':' || name FROM tag WHERE manifest_digest = ? ORDER BY 1", arguments: [digest])
        }

        static func list(kind: ManifestKind?, in store: Store) throws -> [ListEntry] {
            try store.index.database.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM tag ORDER BY repository, name").compactMap { tag in
                    let digest: Digest = tag["manifest_digest"]
                    let manifest = try #require(try Row.fetchOne(db, sql: "SELECT * FROM manifest WHERE digest = ?", arguments: [digest]))
                    let found: ManifestKind = manifest["kind"]
                    guard kind == nil || kind == found else { return nil }
                    let rank = try Int.fetchOne(db, sql: "SELECT rank FROM adapter WHERE manifest_digest = ?", arguments: [digest])
                    return ListEntry(
                        repository: tag["repository"], tag: tag["name"], kind: found, digest: digest,
                        logicalSize: manifest["logical_size"], updatedAt: Date(timeIntervalSince1970: tag["updated_at"]),
                        rank: rank, base: manifest["base_digest"])
                }
            }
        }

        static func lineage(_ reference: Reference, in store: Store) throws -> Lineage {
            try store.index.database.read { db in
                let stored = try store.resolve(reference, in: db)
                func node(_ digest: Digest, weight: Double? = nil) throws -> Lineage.Node {
                    let kind = try ManifestKind.fetchOne(db, sql: "SELECT kind FROM manifest WHERE digest = ?", arguments: [digest])
                    return Lineage.Node(digest: digest, kind: kind ?? .base, tags: try tags(of: digest, db), weight: weight)
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
    }
}
