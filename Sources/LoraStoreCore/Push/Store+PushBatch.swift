import Foundation
import Glibc
import GRDB

extension Store {
    /// Pushes many bases or PEFT adapters at once, all or nothing: what a team with hundreds of adapters
    /// wants instead of hundreds of pushes, each paying for its own flushes and transaction.
    ///
    /// Every item is checked exactly as ``push(_:to:options:)`` checks one (folder layout, repository kind,
    /// safetensors structure, NaN and infinity, every adapter key and shape against its base), on several
    /// threads, before anything is written. `options` applies to every item; an adapter without
    /// `options.base` is checked against the base its repository's latest push used. Then the blobs the
    /// store lacks are written without a flush each, flushed together and linked into place, and a single
    /// transaction records every blob, manifest and tag, in the order of `items`.
    ///
    /// If any item is refused, or anything fails later, nothing changes: no blob file stays, no row is
    /// added, no tag moves. The error is that of the first refused item in the order given, and names its
    /// file (and tensor or field). Two items may not push to the same tag. Each item's files stay mapped
    /// until the batch commits, so very many large items are better pushed in several batches.
    ///
    /// Returns one result per item, in order. A blob new to the store counts as new for the first item that
    /// references it and as reused for later ones, as if the items had been pushed one after the other.
    @discardableResult
    public func push(_ items: [PushItem], options: PushOptions = PushOptions()) throws -> [PushResult] {
        guard let first = items.first else { return [] }
        if options.quantize != nil {
            throw StoreError.invalidInput(
                path: first.path.path, reason: "a batch push does not quantize; push a base to quantize on its own")
        }
        var destinations: [(repository: String, tag: String)] = []
        var claimed: [String: URL] = [:]
        for item in items {
            guard let repository = item.reference.repository, let tag = item.reference.tag else {
                throw StoreError.invalidInput(path: item.reference.description, reason: "push to a tag (NAME[:TAG]), not a digest")
            }
            let destination = "\(repository):\(tag)"
            if let other = claimed[destination] {
                throw StoreError.invalidInput(
                    path: item.path.path, reason: "\(destination) is also where \(other.path) goes; a batch pushes to each tag once")
            }
            claimed[destination] = item.path
            destinations.append((repository, tag))
        }
        let sources = try items.parallelMap { item in try PushSource.inspect(item.path, kind: options.kind) }
        for source in sources { try options.checkBase(forPushOf: source.kind, at: source.folder.path) }
        let context = try index.database.read { db in
            try BatchContext(
                store: self, repositories: destinations.map(\.repository), sources: sources, base: options.base, in: db)
        }
        var kinds = context.repositoryKinds
        for (source, destination) in zip(sources, destinations) {
            let holds = kinds[destination.repository] ?? source.kind
            guard holds == source.kind else {
                throw StoreError.repositoryKind(repository: destination.repository, holds: holds, pushed: source.kind)
            }
            kinds[destination.repository] = holds
        }
        // Progress counts the bytes of each item's tensor files as the item is validated.
        let sizes = sources.map { source in
            source.tensorFiles.reduce(0) { total, file in
                var info = stat()
                return total + (stat(file.path, &info) == 0 ? Int(info.st_size) : 0)
            }
        }
        let hashed = ProgressCounter(phase: "hashing", total: sizes.reduce(0, +), handler: options.progress)
        let pushes = try Array(zip(sources, zip(destinations, sizes))).parallelMap { source, destinationAndSize in
            let (destination, size) = destinationAndSize
            let base = source.kind == .adapter ? context.bases[destination.repository] : nil
            let prepared = try Self.prepare(
                source, base: base, baseModelType: base.flatMap { modelType(of: $0.manifest) }, policy: context.policy,
                progress: nil)
            hashed.add(size)
            return try ValidatedPush(
                prepared, repository: destination.repository, tag: destination.tag, skipped: prepared.skipped)
        }
        return try withMaintenanceLock(.shared) {
            try store(pushes, progress: options.progress)
        }
    }

    /// What a batch push reads from the index once for all its items.
    private struct BatchContext: Sendable {
        let policy: CodecPolicy
        /// The kind each existing repository of the batch holds.
        let repositoryKinds: [String: ManifestKind]
        /// For each repository that receives an adapter: the base to check it against (none when none is
        /// given or recorded, which the adapter's validation reports).
        let bases: [String: StoredManifest]

        init(
            store: Store, repositories: [String], sources: [PushSource], base explicit: Reference?, in db: Database
        ) throws {
            policy = try store.codecPolicy(in: db)
            var kinds: [String: ManifestKind] = [:]
            for repository in Set(repositories) {
                kinds[repository] = try ManifestKind.fetchOne(
                    db.cachedStatement(sql: "SELECT kind FROM repository WHERE name = ?"), arguments: [repository])
            }
            repositoryKinds = kinds
            let adapterRepositories = Set(zip(sources, repositories).filter { $0.0.kind == .adapter }.map(\.1))
            var bases: [String: StoredManifest] = [:]
            if !adapterRepositories.isEmpty {
                let given = try explicit.map { try store.resolve($0, as: .base, in: db) }
                for repository in adapterRepositories {
                    bases[repository] = try given ?? store.recordedBase(ofRepository: repository, in: db)
                }
            }
            self.bases = bases
        }
    }
}
