/// A base, adapter or materialized build as a folder of files, ready to be sent by a registry server.
public struct ServedModel: Sendable, Hashable {
    /// The manifest digest.
    public var digest: Digest
    public var kind: ManifestKind
    /// The files in folder order (tensor files first, then small files).
    public var files: [ServedFile]

    /// The file called `name`, if any.
    public func file(named name: String) -> ServedFile? {
        files.first { $0.name == name }
    }
}
