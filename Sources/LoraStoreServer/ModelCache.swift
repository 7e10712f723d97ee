import LoraStoreCore

/// Serves manifests as model folders: materializes a build on its first request (concurrent requests for
/// the same build wait for one merge) and hashes a base's or adapter's tensor files once, remembering the
/// digests (manifests never change, so neither do their files).
actor ModelCache {
    private let store: Store
    private let workers: Workers
    private let metrics: RegistryMetrics
    private var models: [Digest: ServedModel] = [:]
    private var inFlight: [Digest: Task<ServedModel, any Error>] = [:]

    init(store: Store, workers: Workers, metrics: RegistryMetrics) {
        self.store = store
        self.workers = workers
        self.metrics = metrics
    }

    /// The files of `stored`, each with its SHA-256.
    func model(_ stored: StoredManifest) async throws -> ServedModel {
        if let model = models[stored.digest] { return model }
        if let task = inFlight[stored.digest] { return try await task.value }
        let (store, workers, metrics) = (store, workers, metrics)
        let task = Task {
            try await workers.run {
                if stored.kind == .build, try store.materializeForServing(stored.digest) { metrics.countMaterialization() }
                guard var model = try store.servedModel(stored) else { throw StoreError.notFound(stored.digest.description) }
                for index in model.files.indices where model.files[index].digest == nil {
                    model.files[index].digest = try store.digest(of: model.files[index])
                }
                return model
            }
        }
        inFlight[stored.digest] = task
        defer { inFlight[stored.digest] = nil }
        let model = try await task.value
        // A build's blobs can be evicted later (it is then materialized again), so only bases and adapters
        // are remembered.
        if stored.kind != .build { models[stored.digest] = model }
        return model
    }
}
