/// A validated push: the manifest to record and the blobs it needs.
struct PreparedPush: Sendable {
    var manifest: Manifest
    var blobs: [Digest: PendingBlob]
    var adapter: AdapterRecord?
}
