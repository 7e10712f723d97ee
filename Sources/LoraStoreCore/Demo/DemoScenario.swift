import Foundation

/// The whole lorastore story on generated data: a Llama-shaped base and several PEFT adapters are written
/// exactly as transformers and PEFT write them, pushed, combined into builds (one a weighted mix of two
/// adapters), one build is pulled as a merged model folder, and the storage savings are measured.
///
/// Everything is deterministic (fixed seeds), so running it again pushes nothing new, finds the same builds,
/// and pulls from the cache.
public struct DemoScenario: Sendable {
    /// Approximate bytes of the base model's tensors.
    public var baseBytes: Int
    /// The base's dtype.
    public var dtype: DType
    /// Where the pulled model folder goes.
    public var output: URL
    /// Whether an existing `output` is replaced: true for a folder the demo owns (its default, inside the
    /// store). Otherwise a file or non-empty folder at `output` is refused before anything runs, so that a
    /// mistyped path never deletes someone's files.
    public var replacesOutput: Bool

    /// The smallest base the demo generates: below it the adapters are as large as the base.
    public static let minimumBaseBytes = 16_000_000

    public init(baseBytes: Int = 300_000_000, dtype: DType = .bf16, output: URL, replacesOutput: Bool = false) {
        self.baseBytes = baseBytes
        self.dtype = dtype
        self.output = output
        self.replacesOutput = replacesOutput
    }

    /// The base's reference in the store.
    public static let baseReference = "demo/llama:v1"

    /// The adapters: name, rank, targets, dtype, rsLoRA.
    static let adapters: [(name: String, rank: Int, targets: [LlamaProjection], dtype: DType, rsLoRA: Bool)] = [
        ("demo/support", 16, [.query, .value], .f32, false),
        ("demo/legal", 8, [.query, .key, .value, .output], .f32, false),
        ("demo/coder", 64, LlamaProjection.allCases, .bf16, true),
        ("demo/tone", 4, [.query, .value], .f32, false),
    ]

    /// The builds: name and weighted adapters.
    static let builds: [(name: String, adapters: [(String, Double)])] = [
        ("demo/support-bot:v1", [("demo/support:v1", 1)]),
        ("demo/support-legal:v1", [("demo/support:v1", 0.7), ("demo/legal:v1", 0.3)]),
        ("demo/coder-bot:v1", [("demo/coder:v1", 1)]),
        ("demo/polite-support:v1", [("demo/support:v1", 1), ("demo/tone:v1", 0.5)]),
    ]

    /// The build the demo pulls.
    public static let pulledBuild = "demo/support-legal:v1"

    /// Runs the scenario against `store`, generating inputs in a temporary folder. `step` hears each phase's
    /// name as it starts; `progress` receives byte progress of long phases.
    public func run(
        store: Store, step: @Sendable (String) -> Void = { _ in }, progress: ProgressHandler? = nil
    ) throws -> DemoReport {
        guard baseBytes >= Self.minimumBaseBytes else {
            throw StoreError.invalidInput(
                path: "--size", reason: "\(baseBytes) bytes is too small for the demo's base; give at least \(Self.minimumBaseBytes)")
        }
        if !replacesOutput, let existing = try? FileManager.default.contentsOfDirectory(atPath: output.path), !existing.isEmpty {
            throw StoreError.invalidInput(
                path: output.path, reason: "exists and is not empty; the demo writes a new model folder there (choose another path)")
        }
        if !replacesOutput, FileManager.default.fileExists(atPath: output.path),
           (try? FileManager.default.contentsOfDirectory(atPath: output.path)) == nil {
            throw StoreError.invalidInput(path: output.path, reason: "is a file; the demo writes a model folder there (choose another path)")
        }
        let workspace = FileManager.default.temporaryDirectory.appending(path: "lorastore-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: workspace, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: workspace) }
        var report = DemoReport(pushes: [], builds: [], pull: nil, stats: nil, seconds: [:])
        func timed<T>(_ phase: String, _ body: () throws -> T) rethrows -> T {
            step(phase)
            let start = ContinuousClock.now
            defer {
                let elapsed = ContinuousClock.now - start
                report.seconds[phase] = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            }
            return try body()
        }

        let model = SyntheticModel.sized(bytes: baseBytes, dtype: dtype, seed: 7, maxShardSize: baseBytes / 2)
        try timed("generating a \(model.layers)-layer Llama-shaped base and \(Self.adapters.count) PEFT adapters") {
            _ = try model.write(to: workspace.appending(path: "base"))
            for (index, adapter) in Self.adapters.enumerated() {
                try SyntheticAdapter(
                    base: model, rank: adapter.rank, targets: adapter.targets, dtype: adapter.dtype,
                    useRSLoRA: adapter.rsLoRA, seed: UInt64(100 + index), baseModelName: Self.baseReference
                ).write(to: workspace.appending(path: adapter.name))
            }
        }
        try timed("pushing the base and the adapters") {
            let base = try Reference(parsing: Self.baseReference)
            report.pushes.append(
                try store.push(workspace.appending(path: "base"), to: base, options: PushOptions(progress: progress)))
            for adapter in Self.adapters {
                report.pushes.append(
                    try store.push(
                        workspace.appending(path: adapter.name), to: try Reference(parsing: adapter.name + ":v1"),
                        options: PushOptions(kind: .adapter, base: base, progress: progress)))
            }
        }
        try timed("recording \(Self.builds.count) builds (recipes only, nothing merged)") {
            for build in Self.builds {
                let digest = try store.createBuild(
                    base: try Reference(parsing: Self.baseReference),
                    adapters: try build.adapters.map { (try Reference(parsing: $0.0), $0.1) },
                    tag: try Reference(parsing: build.name))
                report.builds.append(DemoReport.Build(name: build.name, digest: digest))
            }
        }
        try timed("pulling \(Self.pulledBuild) as a merged model folder") {
            if replacesOutput { try? FileManager.default.removeItem(at: output) }
            try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
            report.pull = try store.pull(Self.pulledBuild, to: output, progress: progress)
        }
        report.stats = try timed("measuring storage") { try store.stats() }
        return report
    }
}
