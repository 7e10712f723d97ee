/// What a manifest describes.
public enum ManifestKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// A base model: its tensors, shard layout and small files (config, tokenizer).
    case base
    /// A PEFT adapter pushed against a base.
    case adapter
    /// A merge recipe over a base and adapters.
    case build
}
