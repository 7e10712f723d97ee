import Foundation

/// Writes a Hugging Face model folder: the safetensors files of a ``ModelLayout``, filled tensor by tensor
/// in order, the shard index, and small files.
///
/// Everything is written into a hidden folder beside the destination and renamed into place at the end,
/// so an interrupted write never leaves a folder that looks complete.
public final class ModelFolderWriter {
    public let destination: URL
    public let layout: ModelLayout
    private let staging: URL
    private var fileIndex = 0
    private var tensorIndex = 0
    private var writer: SafetensorsWriter?
    private let computeDigests: Bool
    /// SHA-256 of each safetensors file written, by name, when asked for.
    public private(set) var fileDigests: [String: Digest] = [:]
    /// Bytes of every file in the folder, once ``finish(addingContents:)`` has moved it into place: what a
    /// pull reports as written, the same figure as the files' sizes on disk.
    public private(set) var bytesWritten = 0

    /// Refuses a destination that exists and is not an empty folder: a model folder is written whole, in
    /// place of nothing.
    /// - Throws: ``StoreError/invalidInput(path:reason:)`` naming the destination.
    public static func checkDestination(_ destination: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: destination.path, isDirectory: &isDirectory) else {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: destination.path) {
                throw StoreError.invalidInput(path: destination.path, reason: "is a link to \(target), which does not exist")
            }
            return
        }
        guard isDirectory.boolValue else {
            throw StoreError.invalidInput(path: destination.path, reason: "is a file; a model is written into a new or empty folder")
        }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: destination.path)) ?? ["?"]
        guard contents.isEmpty else {
            throw StoreError.invalidInput(path: destination.path, reason: "exists and is not an empty folder")
        }
    }

    /// Prepares to write `layout` into `destination`, which must not exist or be an empty folder.
    /// With `computeDigests`, each safetensors file is hashed as it is written (``fileDigests``).
    public init(destination: URL, layout: ModelLayout, computeDigests: Bool = false) throws {
        self.computeDigests = computeDigests
        try Self.checkDestination(destination)
        // A link to an empty folder is written through: the folder it names takes the model's place.
        let destination = destination.resolvingSymlinksInPath()
        let manager = FileManager.default
        self.destination = destination
        self.layout = layout
        let parent = destination.deletingLastPathComponent()
        staging = parent.appending(path: StagingFolderName(writing: destination.lastPathComponent, kind: Self.stagingKind).name)
        // A folder of this name can only be one a process of this id left before (the name is this write's).
        try? manager.removeItem(at: staging)
        Self.removeAbandonedStaging(in: parent, of: destination.lastPathComponent)
        try manager.createDirectory(at: staging, withIntermediateDirectories: true)
    }

    /// The kind of a local write's staging folders (``StagingFolderName``).
    static let stagingKind = "partial"

    /// Removes the staging folders of writes to the same destination that stopped (a pull killed before it
    /// renamed its folder into place leaves a whole model's worth of files there;
    /// ``StagingFolderName/isAbandoned(_:writing:kind:)``).
    private static func removeAbandonedStaging(in parent: URL, of destination: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []
        for name in names where StagingFolderName.isAbandoned(name, writing: destination, kind: stagingKind) {
            try? FileManager.default.removeItem(at: parent.appending(path: name))
        }
    }

    deinit {
        try? FileManager.default.removeItem(at: staging)
    }

    /// Appends the next tensor's bytes, in layout order.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        while writer == nil || tensorIndex == layout.files[fileIndex].header.tensors.count {
            try finishFile()
            let file = layout.files[fileIndex]
            // Every file is flushed when finished.
            writer = try SafetensorsWriter(
                url: staging.appending(path: file.name), header: file.header, computeDigest: computeDigests,
                startingWriteback: true)
        }
        try writer?.append(bytes)
        tensorIndex += 1
    }

    /// Adds a small file (config, tokenizer...), flushed like the safetensors files.
    public func addFile(_ path: String, contents: UnsafeRawBufferPointer) throws {
        guard !path.contains("/"), path != ".", path != ".." else {
            throw StoreError.invalidInput(path: path, reason: "a model folder file name cannot contain '/' or be '.' or '..'")
        }
        let file = try WritableFile(creating: staging.appending(path: path).path)
        try file.write(contents)
        try file.sync()
        try file.close()
    }

    /// Completes the files, writes the shard index, and moves the folder into place.
    ///
    /// `addingContents` writes what else the folder holds (a `separate` build's adapters) into the staging
    /// folder it is given, before the rename: a folder under its final name is always whole.
    public func finish(addingContents: (URL) throws -> Void = { _ in }) throws {
        try finishFile()
        if let index = layout.shardIndex {
            try index.encoded().withUnsafeBytes { try addFile(ShardIndex.fileName, contents: $0) }
        }
        try addingContents(staging)
        bytesWritten = Self.totalFileBytes(in: staging)
        // The files' names are durable once the folder holding them is flushed, which must come before the
        // folder takes its final name: after a crash, a folder under that name holds every file, whole.
        try WritableFile.syncDirectory(staging.path)
        try Self.moveIntoPlace(staging, as: destination)
        // The rename is durable once the folder that holds it is flushed.
        try WritableFile.syncDirectory(destination.deletingLastPathComponent().path)
    }

    /// Renames the finished folder `staging` to `destination`, which may be missing or an empty folder,
    /// in one step: `rename` replaces an empty folder and refuses one that holds anything, so files that
    /// appeared there meanwhile (a user's, or another pull's into the same folder) are never deleted, and
    /// of two pulls into one folder the second fails instead of both reporting success.
    public static func moveIntoPlace(_ staging: URL, as destination: URL) throws {
        guard rename(staging.path, destination.path) != 0 else { return }
        let code = errno
        if code == ENOTEMPTY || code == EEXIST {
            throw StoreError.invalidInput(
                path: destination.path, reason: "exists and is not an empty folder (something was written there meanwhile); nothing was replaced")
        }
        if code == ENOTDIR {
            throw StoreError.invalidInput(path: destination.path, reason: "is not a folder (it became a file meanwhile); nothing was replaced")
        }
        throw FileAccessError(.rename, path: destination.path, errno: code)
    }

    /// The sizes of the regular files in `folder` and below, added up.
    private static func totalFileBytes(in folder: URL) -> Int {
        let keys: Set<URLResourceKey> = [.isRegularFileKey, .fileSizeKey]
        guard let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: Array(keys)) else { return 0 }
        var total = 0
        for case let url as URL in files {
            guard let values = try? url.resourceValues(forKeys: keys), values.isRegularFile == true else { continue }
            total += values.fileSize ?? 0
        }
        return total
    }

    private func finishFile() throws {
        guard let writer else {
            tensorIndex = 0
            return
        }
        try writer.finish(sync: true)
        if let digest = writer.digest { fileDigests[writer.url.lastPathComponent] = digest }
        self.writer = nil
        fileIndex += 1
        tensorIndex = 0
    }
}
