import LoraStoreCore

/// Serves manifests as model folders: materializes a build on its first request (concurrent requests for
/// the same build wait for one merge) and holds it for each request, and hashes a base's or adapter's
/// tensor files once, remembering the digests (manifests never change, so neither do their files).
actor ModelCache {
    private let store: Store
    private let workers: Workers
    private let metrics: RegistryMetrics
    private var models: [Digest: ServedModel] = [:]
    private var inFlight: [Digest: Task<ServedModel, any Error>] = [:]
    /// Builds being materialized: the first requests for a cold build wait for one merge on one worker
    /// instead of each blocking a worker on the build's lock.
    private var merges: [Digest: Task<Bool, any Error>] = [:]

    init(store: Store, workers: Workers, metrics: RegistryMetrics) {
        self.store = store
        self.workers = workers
        self.metrics = metrics
    }

    /// The files of `stored`, each with its SHA-256, and for a build the hold that keeps it from eviction
    /// while its files are sent (keep it until the response body is written).
    func model(_ stored: StoredManifest) async throws -> (model: ServedModel, hold: BuildHold?) {
        if let model = models[stored.digest] { return (model, nil) }
        let (store, workers, metrics) = (store, workers, metrics)
        guard stored.kind != .build else {
            let merge = merges[stored.digest] ?? Task { try await workers.run { try store.holdForServing(stored.digest).merged } }
            let started = merges[stored.digest] == nil
            if started { merges[stored.digest] = merge }
            defer { if started { merges[stored.digest] = nil } }
            if try await merge.value, started { metrics.countMaterialization() }
            // Each request then holds the build itself while its files are listed or sent.
            return try await workers.run {
                let (hold, _) = try store.holdForServing(stored.digest)
                return (try Self.hashedModel(stored, in: store), hold)
            }
        }
        if let task = inFlight[stored.digest] { return (try await task.value, nil) }
        let task = Task {
            try await workers.run { try Self.hashedModel(stored, in: store) }
        }
        inFlight[stored.digest] = task
        defer { inFlight[stored.digest] = nil }
        let model = try await task.value
        models[stored.digest] = model
        return (model, nil)
    }

    /// The served files of `stored`, hashing those whose digest is not recorded (tensor files of bases and
    /// adapters, including a `separate` build's adapters).
    private static func hashedModel(_ stored: StoredManifest, in store: Store) throws -> ServedModel {
        guard var model = try store.servedModel(stored) else { throw StoreError.notFound(stored.digest.description) }
        for index in model.files.indices where model.files[index].digest == nil {
            model.files[index].digest = try store.digest(of: model.files[index])
        }
        return model
    }
}
