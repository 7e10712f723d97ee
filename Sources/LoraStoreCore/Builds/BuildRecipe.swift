/// How to make a build: a base, ordered adapters with weights, and merge options. Its canonical JSON (inside
/// a build manifest) is content-addressed, so the same recipe is always the same build, and recording one
/// computes nothing.
public struct BuildRecipe: Sendable, Hashable, Codable {
    /// The base manifest.
    public var base: Digest
    /// The adapters in merge order.
    public var adapters: [WeightedAdapter]
    /// Output dtype, combination mode and shard size.
    public var options: MergeOptions
    /// The merge engine's semantic version: a change of merge results gets a new version, so recipes made
    /// under another version are other builds rather than silently different bytes.
    public var engineVersion: String

    /// The current merge semantics. 1.1: PEFT's linear combination with the sign on A and the rsLoRA scale,
    /// only the modules the adapter's config targets, `base_layer` copies that differ from the base, and each
    /// module laid out by its class (GPT-2's Conv1D as `[in, out]`) rather than by `fan_in_fan_out`. 1.2: a
    /// LoRA bias adds to the trained bias an adapter carries (`bias="all"`) instead of being dropped, and
    /// PEFT's linear combination keeps the base's tensors where an adapter saves a module. 1.3: a config
    /// without `target_modules` targets PEFT's defaults for the base's model type (not every module with
    /// factors), and DoRA magnitudes count only with `use_dora`.
    public static let currentEngineVersion = "1.3"

    public init(base: Digest, adapters: [WeightedAdapter], options: MergeOptions = MergeOptions()) {
        self.base = base
        self.adapters = adapters
        self.options = options
        self.engineVersion = Self.currentEngineVersion
    }

    /// The `__metadata__` recording where a merged model came from: base digest, adapters with weights and
    /// options (values are strings, as safetensors requires; lists are JSON), plus `extra` entries.
    public func provenance(_ extra: [String: String]) -> [String: String] {
        func json(_ value: some Encodable) -> String {
            (try? CanonicalJSON.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        return [
            "lorastore.base": base.description,
            "lorastore.adapters": json(adapters),
            "lorastore.options": json(options),
        ].merging(extra) { _, extra in extra }
    }
}
