import Foundation
import GRDB
import Testing
@testable import LoraStoreCore

/// What a reader limited to some repositories sees: namespace patterns, manifests and blobs by digest, and
/// storage figures of its own repositories only.
@Suite("Repository visibility")
struct VisibilityTests {
    @Test func patternsMatchAsTokenNamespacesDo() {
        #expect(RepositoryVisibility(namespace: "*") == .all)
        #expect(RepositoryVisibility.all.isAll && RepositoryVisibility.all.allows("anything/at-all"))
        let team = RepositoryVisibility(namespace: "team-a/*")
        #expect(!team.isAll)
        #expect(team.allows("team-a/bot") && team.allows("team-a/deep/bot"))
        #expect(!team.allows("team-ab/bot") && !team.allows("team-a") && !team.allows("team-b/bot"))
        let one = RepositoryVisibility(namespace: "team-a/bot")
        #expect(one.allows("team-a/bot") && !one.allows("team-a/bot2") && !one.allows("team-a/other"))
    }

    @Test func statsOfANamespaceAreThoseOfItsManifestsAlone() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            try test.push("base_fp32", as: "acme/base:fp32")
            try test.push("base_fp32_sharded", as: "acme/base:sharded")
            try test.push("adapters/a_r8_qv", as: "acme/a", base: "acme/base:fp32")
            try test.store.createBuild(
                base: try Reference(parsing: "acme/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), 1)],
                tag: try Reference(parsing: "acme/a-merged"))
            try test.store.pull("acme/a-merged", to: directory.appending(path: "pulled"))
            let acme = RepositoryVisibility(namespace: "acme/*")

            // Everything is acme's: the same figures as the whole store's, but those that belong to no repository.
            var whole = try test.store.stats()
            #expect(whole.buildSavedBytes > 0 && whole.dedupSavedBytes > 0)
            whole.unreferencedBytes = 0
            whole.indexBytes = 0
            #expect(try test.store.stats(visibleTo: acme) == whole)

            // Another namespace changes nothing of acme's totals, and its manifests are not acme's entries.
            try test.push("base_bf16", as: "other/base")
            try test.push("adapters/e_r8_qv_bf16", as: "other/e", base: "other/base")
            try test.store.createBuild(
                base: try Reference(parsing: "other/base"), adapters: [(try Reference(parsing: "other/e"), 0.5)],
                tag: try Reference(parsing: "other/e-half"))
            try test.store.tag(try Reference(parsing: "acme/a"), as: try Reference(parsing: "other/a-copy"))
            let after = try test.store.stats(visibleTo: acme)
            #expect(after.logicalBytes == whole.logicalBytes)
            #expect(after.storedBytes == whole.storedBytes)
            #expect(after.dedupSavedBytes == whole.dedupSavedBytes)
            #expect(after.compressionSavedBytes == whole.compressionSavedBytes)
            #expect(after.buildSavedBytes == whole.buildSavedBytes)
            #expect(after.entries.map(\.digest) == whole.entries.map(\.digest))
            #expect(after.entries.map(\.tags) == whole.entries.map(\.tags), "other/a-copy is not acme's to see")
            #expect(try test.store.stats().entries.count == whole.entries.count + 3)

            // One reference: its entry, with the namespace's totals; a digest of another namespace is not there.
            let adapter = try test.store.resolve(try Reference(parsing: "acme/a")).digest
            let one = try test.store.stats(for: try Reference(parsing: "acme/a"), visibleTo: acme)
            #expect(one.entries.map(\.digest) == [adapter] && one.storedBytes == whole.storedBytes)
            let otherBase = try test.store.resolve(try Reference(parsing: "other/base")).digest
            #expect(throws: StoreError.notFound(otherBase.description)) {
                try test.store.stats(for: Reference(digest: otherBase), visibleTo: acme)
            }
        }
    }

    @Test func manifestsAndBlobsByDigestNeedAVisibleRepository() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            try test.push("base_fp32", as: "acme/base")
            try test.push("adapters/a_r8_qv", as: "acme/a", base: "acme/base")
            try test.push("adapters/b_r16_all_rslora", as: "acme/b", base: "acme/base")
            let acme = RepositoryVisibility(namespace: "acme/*")
            let other = RepositoryVisibility(namespace: "other/*")
            let base = try test.store.resolve(try Reference(parsing: "acme/base"))
            let baseBlob = base.manifest.tensors[0].digest

            #expect(try test.store.resolve(Reference(digest: base.digest), visibleTo: acme).digest == base.digest)
            #expect(throws: StoreError.self) { try test.store.resolve(Reference(digest: base.digest), visibleTo: other) }
            #expect(throws: StoreError.self) { try test.store.resolve(try Reference(parsing: "acme/base"), visibleTo: other) }
            #expect(try test.store.blobInfo(baseBlob, visibleTo: acme) != nil)
            #expect(try test.store.blobInfo(baseBlob, visibleTo: other) == nil)
            #expect(try test.store.blobInfo(baseBlob, visibleTo: .all) != nil)

            // An untagged build (an ad-hoc recipe's) is visible to those who see its inputs.
            let adHoc = try test.store.resolveBuild("acme/base+acme/a@0.5")
            #expect(try test.store.resolve(Reference(digest: adHoc), visibleTo: acme).kind == .build)
            #expect(throws: StoreError.self) { try test.store.resolve(Reference(digest: adHoc), visibleTo: other) }
            let baseReference = try Reference(parsing: "acme/base")
            #expect(try test.store.lineage(baseReference, visibleTo: acme).derivedBuilds.map(\.digest) == [adHoc])
            let baseOnly = try test.store.lineage(baseReference, visibleTo: RepositoryVisibility(namespace: "acme/base"))
            #expect(baseOnly.derivedBuilds.isEmpty && baseOnly.derivedAdapters.isEmpty)
            #expect(try test.store.lineage(baseReference).derivedAdapters.count == 2)
            #expect(throws: StoreError.self) {
                try test.store.resolveBuild("acme/base+acme/a@0.25", visibleTo: RepositoryVisibility(namespace: "acme/base"))
            }

            // An untagged adapter belongs to no one: only a reader of everything sees it and its blobs.
            let adapter = try test.store.resolve(try Reference(parsing: "acme/b"))
            let own = Set(adapter.manifest.tensors.map(\.digest)).subtracting(
                try test.store.resolve(try Reference(parsing: "acme/a")).manifest.tensors.map(\.digest))
            let blob = try #require(own.first)
            #expect(try test.store.blobInfo(blob, visibleTo: acme) != nil)
            try test.store.untag(try Reference(parsing: "acme/b"), force: true)
            #expect(try test.store.blobInfo(blob, visibleTo: acme) == nil)
            #expect(try test.store.blobInfo(blob, visibleTo: .all) != nil)
            #expect(throws: StoreError.self) { try test.store.resolve(Reference(digest: adapter.digest), visibleTo: acme) }
            #expect(try test.store.resolve(Reference(digest: adapter.digest), visibleTo: .all).digest == adapter.digest)
        }
    }

    @Test func visibilityQueriesUseIndexes() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let plans = try test.store.index.database.read { db in
                try [Store.blobHoldersQuery, Store.buildInputsQuery].map { query in
                    try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + query, arguments: [Digest(of: [1, 2, 3])])
                        .map { row -> String in row["detail"] }
                }
            }
            for plan in plans {
                for line in plan {
                    let scanned = line.hasPrefix("SCAN ")
                        ? line.dropFirst(5).split(separator: " ").first { $0 != "TABLE" }.map(String.init) : nil
                    let tables = ["manifest_blob", "build_blob", "tag", "build", "build_adapter", "blob", "manifest"]
                    #expect(!tables.contains(scanned ?? ""), "\(plan)")
                }
            }
            #expect(plans[0].contains { $0.contains("manifest_blob_by_blob") }, "\(plans[0])")
            #expect(plans[0].contains { $0.contains("build_blob_by_blob") }, "\(plans[0])")
            #expect(plans[0].contains { $0.contains("tag_by_manifest") }, "\(plans[0])")
            #expect(plans[1].contains { $0.contains("tag_by_manifest") }, "\(plans[1])")
        }
    }
}
