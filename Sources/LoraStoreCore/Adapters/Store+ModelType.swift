import Foundation

extension Store {
    /// The `model_type` in a base's `config.json` (`gpt2`, `llama`...), or nil when it has none or it
    /// cannot be read: adapters are laid out by it where PEFT decides by a module's class.
    func modelType(of base: Manifest) -> String? {
        guard let entry = base.files.first(where: { $0.path == Self.modelConfigPath }),
              let codec = try? index.database.read({ db in try codecs(of: [entry.digest], in: db)[entry.digest] }),
              let contents = try? blobs.read(entry.digest, codec: codec)
        else { return nil }
        return Self.modelType(inConfig: contents.bytes)
    }

    /// Where a base model folder keeps its Hugging Face configuration.
    public static let modelConfigPath = "config.json"

    /// The `model_type` member of a Hugging Face `config.json`, or nil when the bytes are not a JSON object
    /// with a string there. A registry client reads it from the base's configuration so that it checks an
    /// adapter's layout as the server will.
    public static func modelType(inConfig bytes: UnsafeRawBufferPointer) -> String? {
        guard let document = try? OrderedJSON.parse(bytes) else { return nil }
        return document["model_type"]?.string
    }
}
