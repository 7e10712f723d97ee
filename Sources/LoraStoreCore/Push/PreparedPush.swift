import Foundation

/// A validated push: the manifest to record and the blobs it needs.
struct PreparedPush: Sendable {
    var manifest: Manifest
    var blobs: [Digest: PendingBlob]
    var adapter: AdapterRecord?
    /// What the push leaves out, with the reason: files of the folder, shards the index does not list, an
    /// adapter's factors for modules its config does not target.
    var skipped: [String] = []
    /// Every tensor file the push read, including those whose tensors all repeat bytes found in another
    /// file: a blob staged as soon as it was hashed (``EarlyStaging``) may come from any of them.
    var tensorFiles: [SafetensorsFile] = []

    /// Throws when a tensor file the push read was changed since it was opened: its tensors were hashed and
    /// checked from the file as it was, and the blobs may hold other bytes than their names say.
    func checkSourcesUnchanged() throws {
        var checked = Set<String>()
        let blobFiles = blobs.values.compactMap { blob -> SafetensorsFile? in
            guard case .tensor(let file, _) = blob.source else { return nil }
            return file
        }
        for file in tensorFiles + blobFiles {
            guard checked.insert(file.url.path).inserted else { continue }
            guard file.isUnchanged else {
                throw StoreError.invalidInput(
                    path: file.url.path,
                    reason: "the file changed while it was being pushed; nothing was stored (push it again once it is written)")
            }
        }
    }
}
