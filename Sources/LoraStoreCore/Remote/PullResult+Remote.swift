extension PullResult {
    /// The result of a pull a registry client downloaded (nothing merged or evicted here: the server did
    /// whatever merging the pull needed).
    public init(downloaded digest: Digest, kind: ManifestKind, destination: String, files: [String: Digest], bytes: Int) {
        self.init(
            digest: digest, kind: kind, destination: destination, files: files, bytes: bytes, merged: false, rebuilt: false,
            evicted: [])
    }
}
