import AsyncHTTPClient
import Crypto
import Foundation
import LoraStoreCore
import NIOCore

extension RegistryClient {
    /// Writes what `text` names on the server (a build, base or adapter, or an ad-hoc recipe) into
    /// `destination` as a standard folder; the server materializes a build on first request.
    ///
    /// Files are downloaded into a hidden folder beside `destination` that the next run takes over when this
    /// one is interrupted (``stagingFolder(for:)``), continuing each file where it stopped (with `Range`).
    /// Every file must hash to the digest the server lists; then the folder is moved into place, which fails
    /// if `destination` was filled meanwhile.
    @discardableResult
    public func pull(_ text: String, to destination: URL, progress: ProgressHandler? = nil) async throws -> PullResult {
        try ModelFolderWriter.checkDestination(destination)
        // A link to an empty folder is written through: the folder it names takes the model's place.
        let destination = destination.resolvingSymlinksInPath()
        let manager = FileManager.default
        let list = try await files(of: text)
        for file in list.files where !ReceiveError.isSafeRelativePath(file.name) {
            throw RegistryClientError.invalidResponse("the server listed an unsafe file name \"\(file.name)\"")
        }
        let total = try list.files.reduce(0) { total, file in
            let (sum, overflow) = total.addingReportingOverflow(file.size)
            guard file.size >= 0, !overflow else {
                throw RegistryClientError.invalidResponse("the server listed \(file.name) with an impossible size, \(file.size) bytes")
            }
            return sum
        }
        let staging = Self.stagingFolder(for: destination)
        try manager.createDirectory(at: staging, withIntermediateDirectories: true)
        try Self.removeUnlisted(in: staging, keeping: list.files.map(\.name))
        let counter = TransferCounter(phase: "downloading", total: total, handler: progress)
        for file in list.files {
            let url = staging.appending(path: file.name)
            try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try await download(file, of: list.pinned, to: url, counter: counter)
        }
        do {
            try ModelFolderWriter.moveIntoPlace(staging, as: destination)
        } catch let error as StoreError {
            // The destination holds something else now: nothing here is left to continue. (Any other failure
            // keeps the folder, so the next pull resumes it.)
            try? manager.removeItem(at: staging)
            throw error
        }
        return PullResult(
            downloaded: list.digest, kind: list.kind, destination: destination.path,
            files: Dictionary(list.files.map { ($0.name, $0.digest) }, uniquingKeysWith: { first, _ in first }),
            bytes: total)
    }

    /// Removes what an earlier, interrupted pull left in `staging` that the listing no longer names (files
    /// and folders at any depth), so the finished folder holds exactly the listed files.
    private static func removeUnlisted(in staging: URL, keeping names: [String]) throws {
        let manager = FileManager.default
        var kept = Set(names)
        for name in names {
            var folder = name
            while let slash = folder.lastIndex(of: "/") {
                folder = String(folder[..<slash])
                kept.insert(folder)
            }
        }
        let present = (manager.enumerator(atPath: staging.path)?.allObjects as? [String]) ?? []
        for path in present where !kept.contains(path) && manager.fileExists(atPath: staging.appending(path: path).path) {
            try manager.removeItem(at: staging.appending(path: path))
        }
    }

    /// Downloads one file, continuing a partial one, and checks its digest. A partial file whose bytes turn
    /// out wrong is downloaded once more from the start.
    private func download(
        _ file: RegistryAPI.FileList.File, of pinned: String, to url: URL, counter: TransferCounter
    ) async throws {
        for attempt in 0..<2 {
            var have = Self.size(ofFileAt: url)
            if have > file.size || attempt > 0 {
                try? FileManager.default.removeItem(at: url)
                have = 0
            }
            counter.add(have)
            if have < file.size {
                try await fetch(file.name, of: pinned, to: url, from: have, counter: counter)
            } else if !FileManager.default.fileExists(atPath: url.path) {
                try Data().write(to: url)
            }
            let actual = try Self.digest(ofFileAt: url)
            if actual == file.digest { return }
            if attempt == 1 || have == 0 {
                try? FileManager.default.removeItem(at: url)
                throw RegistryClientError.corrupt(file: file.name, expected: file.digest, actual: actual)
            }
        }
    }

    /// Appends the bytes of `name` from `offset` on to the file at `url`.
    private func fetch(_ name: String, of pinned: String, to url: URL, from offset: Int, counter: TransferCounter) async throws {
        let response = try await execute(
            path: "file/\(name)", query: ["ref": pinned], headers: offset > 0 ? [("Range", "bytes=\(offset)-")] : [])
        guard response.status == .ok || response.status == .partialContent else {
            try Self.check(response, body: try await readingAnswer(to: "file/\(name)") { try await response.body.collect(upTo: 1 << 20) })
            throw RegistryClientError.invalidResponse("status \(response.status.code) for \(name)")
        }
        if !FileManager.default.fileExists(atPath: url.path) || response.status == .ok {
            try Data().write(to: url)
        }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        if response.status == .partialContent { try handle.seekToEnd() }
        try await readingAnswer(to: "file/\(name)") {
            for try await buffer in response.body {
                try handle.write(contentsOf: Data(buffer.readableBytesView))
                counter.add(buffer.readableBytes)
            }
        }
        try handle.synchronize()
    }

    /// This pull's staging folder for `destination` (``StagingFolderName``, kind `pulling`), holding the
    /// partial files of an interrupted pull to continue if one is there: an abandoned folder of the same
    /// destination (or one named `.NAME.pulling`, as earlier versions named it) is taken by renaming it,
    /// which only one of two pulls starting at once can do. Each pull writes its own folder, and moving it
    /// into place (``ModelFolderWriter/moveIntoPlace(_:as:)``) lets only one of two pulls into one folder
    /// succeed.
    static func stagingFolder(for destination: URL) -> URL {
        let parent = destination.deletingLastPathComponent()
        let name = destination.lastPathComponent
        let staging = parent.appending(path: StagingFolderName(writing: name, kind: "pulling").name)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []
        for candidate in names.sorted() where StagingFolderName.isAbandoned(candidate, writing: name, kind: "pulling") {
            if rename(parent.appending(path: candidate).path, staging.path) == 0 { break }
        }
        return staging
    }

    /// The SHA-256 of a file, read in chunks.
    static func digest(ofFileAt url: URL) throws -> LoraStoreCore.Digest {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
        }
        let hex = hasher.finalize().map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        guard let digest = LoraStoreCore.Digest(hex) else { throw RegistryClientError.invalidResponse("cannot hash \(url.path)") }
        return digest
    }

    /// The size of the file at `url`, 0 when there is none.
    private static func size(ofFileAt url: URL) -> Int {
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
        return (attributes?[.size] as? Int) ?? 0
    }
}
