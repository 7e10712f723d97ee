import Foundation
import GRDB

extension Store {
    /// Records a build recipe and, when `tag` is given, tags it. Nothing is merged: the recipe is checked
    /// (base and adapters exist, every adapter fits the base) and stored, in milliseconds. The same recipe
    /// twice is the same build.
    ///
    /// With a `visibility` short of ``RepositoryVisibility/all``, the base and adapters must be ones the
    /// reader may see (``resolve(_:visibleTo:)``): a build is a way to read its inputs.
    ///
    /// An adapter pushed against another model than `base` is refused unless `allowingOtherBase`
    /// (``StoreError/adapterForOtherBase(adapter:pushedFor:base:equalTensors:tensors:)``).
    @discardableResult
    public func createBuild(
        base: Reference, adapters: [(reference: Reference, weight: Double)], options: MergeOptions = MergeOptions(),
        tag: Reference? = nil, visibleTo visibility: RepositoryVisibility = .all, allowingOtherBase: Bool = false
    ) throws -> Digest {
        try record(
            try recipe(base: base, adapters: adapters, options: options, visibleTo: visibility), tag: tag,
            allowingOtherBase: allowingOtherBase, visibleTo: visibility)
    }

    /// The recipe of a build of `base` and `adapters`, their references resolved to digests; nothing is
    /// recorded.
    func recipe(
        base: Reference, adapters: [(reference: Reference, weight: Double)], options: MergeOptions,
        visibleTo visibility: RepositoryVisibility = .all
    ) throws -> BuildRecipe {
        try index.database.read { db in
            BuildRecipe(
                base: try resolve(base, as: .base, visibleTo: visibility, in: db).digest,
                adapters: try adapters.map {
                    WeightedAdapter(
                        digest: try resolve($0.reference, as: .adapter, visibleTo: visibility, in: db).digest, weight: $0.weight)
                },
                options: options)
        }
    }

    /// The manifest JSON recording `recipe` stores, and its digest, which is the build's: a function of the
    /// recipe alone.
    static func buildManifest(of recipe: BuildRecipe) throws -> (json: Data, digest: Digest) {
        let json = try Manifest(kind: .build, tensors: [], files: [], base: recipe.base, recipe: recipe).canonicalJSON()
        return (json, Digest(of: json))
    }

    /// Records `recipe` (checked against its base) and optionally tags it; returns the build's digest.
    ///
    /// A recipe whose adapter was pushed against another model than its base is refused unless
    /// `allowingOtherBase` (``checkAdapterBases(_:base:visibleTo:in:)``, after the adapters were found to fit
    /// the base, so an adapter that does not fit is named as such). An untagged recipe recorded before
    /// (allowed, or by an earlier lorastore) is not asked again when everything is visible (a local store, a
    /// registry with open reads): pulling an ad-hoc recipe again pulls that build. Tagging one is asking for
    /// it anew, and a reader limited to some namespaces is always asked, since the build may be another
    /// namespace's and its existence is not theirs to learn. `visibility` also limits the tags errors name.
    @discardableResult
    public func record(
        _ recipe: BuildRecipe, tag: Reference? = nil, allowingOtherBase: Bool = false,
        visibleTo visibility: RepositoryVisibility = .all
    ) throws -> Digest {
        if let tag, tag.tag == nil {
            throw StoreError.invalidInput(path: tag.description, reason: "tag a build as NAME[:TAG]")
        }
        let base = try index.database.read { db in try existingManifest(recipe.base, in: db) }
        let plan = try MergePlan(base: base, adapters: recipe.adapters, options: recipe.options, store: self)
        let (json, digest) = try Self.buildManifest(of: recipe)
        if !allowingOtherBase {
            try index.database.read { db in
                let recorded = try self.manifest(digest, in: db) != nil
                guard tag != nil || !visibility.isAll || !recorded else { return }
                try checkAdapterBases(recipe.adapters.map(\.digest), base: base, visibleTo: visibility, in: db)
            }
        }
        let logicalSize = plan.outputBytes
            + base.manifest.files.filter { $0.path != ShardIndex.fileName }.reduce(0) { $0 + $1.size }
        try index.database.write { db in
            let now = Date().timeIntervalSince1970
            if try self.manifest(digest, in: db) == nil {
                try db.execute(
                    sql: "INSERT INTO manifest (digest, kind, content, logical_size, base_digest, created_at) VALUES (?, 'build', ?, ?, ?, ?)",
                    arguments: [digest, json, logicalSize, recipe.base, now])
                try db.execute(
                    sql: "INSERT INTO build (digest, base_digest, created_at) VALUES (?, ?, ?)",
                    arguments: [digest, recipe.base, now])
                for (position, adapter) in recipe.adapters.enumerated() {
                    try db.execute(
                        sql: "INSERT INTO build_adapter (build_digest, position, adapter_digest, weight) VALUES (?, ?, ?, ?)",
                        arguments: [digest, position, adapter.digest, adapter.weight])
                }
            }
            if let tag, let repository = tag.repository, let name = tag.tag {
                try tagManifest(digest, kind: .build, repository: repository, tag: name, in: db, now: now)
            }
        }
        return digest
    }

    /// Resolves what `text` names as a build: a reference to a build, or an ad-hoc recipe
    /// `BASE+ADAPTER[@WEIGHT]+...` (recorded untagged, so later pulls of the same recipe reuse its cache).
    /// With a `visibility` short of ``RepositoryVisibility/all``, the build, or the recipe's base and
    /// adapters, must be ones the reader may see.
    public func resolveBuild(
        _ text: String, options: MergeOptions = MergeOptions(), visibleTo visibility: RepositoryVisibility = .all
    ) throws -> Digest {
        guard let recipe = try AdHocRecipe(parsing: text) else {
            return try index.database.read { db in
                try resolve(try Reference(parsing: text), as: .build, visibleTo: visibility, in: db).digest
            }
        }
        return try createBuild(base: recipe.base, adapters: recipe.adapters, options: options, visibleTo: visibility)
    }
}
