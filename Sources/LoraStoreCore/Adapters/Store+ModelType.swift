extension Store {
    /// The `model_type` in a base's `config.json` (`gpt2`, `llama`...), or nil when it has none or it
    /// cannot be read: adapters are laid out by it where PEFT decides by a module's class.
    func modelType(of base: Manifest) -> String? {
        guard let entry = base.files.first(where: { $0.path == "config.json" }),
              let codec = try? index.database.read({ db in try codecs(of: [entry.digest], in: db)[entry.digest] }),
              let contents = try? blobs.read(entry.digest, codec: codec),
              let document = try? OrderedJSON.parse(contents.bytes)
        else { return nil }
        return document["model_type"]?.string
    }
}
