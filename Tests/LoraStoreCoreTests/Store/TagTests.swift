import Foundation
import GRDB
import Testing
@testable import LoraStoreCore

/// Tags: moving, removing by name or digest, and what a removal may not do.
@Suite("Tags")
struct TagTests {
    @Test func untaggingAMissingTagChangesNothing() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let before = try test.snapshot()
            #expect(throws: StoreError.notFound("micro/base:nope")) { try test.store.untag(try Reference(parsing: "micro/base:nope")) }
            #expect(throws: StoreError.notFound("acme/none:latest")) { try test.store.untag(try Reference(parsing: "acme/none")) }
            #expect(try test.snapshot() == before)
        }
    }

    /// `NAME@sha256:...` removes every tag of NAME on that digest and leaves NAME's other tags.
    @Test func untaggingADigestRemovesEveryTagOfTheRepositoryOnIt() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let base = try test.store.resolve(try Reference(parsing: "micro/base:fp32")).digest
            try test.store.tag(try Reference(parsing: "micro/base:fp32"), as: try Reference(parsing: "micro/base:stable"))
            try test.store.tag(try Reference(parsing: "micro/base:fp32"), as: try Reference(parsing: "other/base:kept"))
            try test.push("base_bf16", as: "micro/base:bf16")
            let removed = try test.store.untag(try Reference(parsing: "micro/base@\(base)"))
            #expect(removed == ["micro/base:fp32", "micro/base:stable"])
            #expect(try test.store.list().map { "\($0.repository):\($0.tag)" } == ["micro/base:bf16", "other/base:kept"])
        }
    }

    /// A repository holds one kind: tagging an adapter into a base repository is refused, and a digest is
    /// no place for a tag. Once a repository's last tag is gone, it may hold another kind.
    @Test func aRepositoryHoldsOneKindUntilItsLastTagIsGone() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let adapter = try test.push("adapters/a_r8_qv", as: "acme/a", base: "micro/base:fp32").digest
            let before = try test.snapshot()
            #expect(throws: StoreError.repositoryKind(repository: "micro/base", holds: .base, pushed: .adapter)) {
                try test.store.tag(Reference(digest: adapter), as: try Reference(parsing: "micro/base:adapter"))
            }
            #expect(throws: StoreError.self) {
                try test.store.tag(try Reference(parsing: "acme/a"), as: Reference(digest: adapter))
            }
            #expect(try test.snapshot() == before)

            try test.store.tag(Reference(digest: adapter), as: try Reference(parsing: "scratch/thing"))
            try test.store.untag(try Reference(parsing: "scratch/thing"))
            try test.store.tag(try Reference(parsing: "micro/base:fp32"), as: try Reference(parsing: "scratch/thing"))
            #expect(try test.store.resolve(try Reference(parsing: "scratch/thing")).kind == .base)
        }
    }
}
