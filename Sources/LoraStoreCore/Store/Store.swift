import Foundation
import GRDB

/// A lorastore store: blob files under a root folder and the SQLite index that says what they are.
///
/// Safe to use from many threads and from several processes at once: the index serialises writers and
/// every blob write is atomic.
public final class Store: Sendable {
    /// The store root.
    public let root: URL
    /// The SQLite index's file name under the root: its presence is what makes a folder a store.
    public static let indexFileName = "index.sqlite"
    /// The blob files.
    public let blobs: BlobStore
    /// The index.
    public let index: StoreIndex
    /// How long an operation waits for the store's maintenance lock (held exclusively by garbage collection
    /// and `verify --repair`, and shared by writers, which those wait for) before it fails with
    /// ``StoreError/maintenanceBusy(waited:)``; nil waits as long as it takes. A command line can wait; a
    /// registry sets a limit so that its requests fail with a retryable answer instead of piling up on its
    /// worker threads for as long as a collection runs.
    public let maintenanceWait: Duration?

    /// Opens the store at `root`, creating it when it does not exist. `indexBusyTimeout` is how long a write
    /// to the index waits for another process's write before failing busy (``StoreIndex/isBusy(_:)``).
    public init(root: URL, maintenanceWait: Duration? = nil, indexBusyTimeout: Duration = .seconds(30)) throws {
        self.root = root.standardizedFileURL
        self.maintenanceWait = maintenanceWait
        blobs = BlobStore(root: self.root)
        try blobs.createDirectories()
        let indexPath = self.root.appending(path: Self.indexFileName).path
        // SQLite makes a new database of a missing or empty file: the store's blobs would all become
        // orphans, which garbage collection and `verify --repair` delete.
        let indexSize = (try? FileManager.default.attributesOfItem(atPath: indexPath))?[.size] as? Int
        if indexSize ?? 0 == 0, blobs.holdsAnyFile() {
            throw StoreError.damagedIndex(
                path: indexPath, reason: indexSize == nil ? "it is missing, but blobs/ holds files" : "it is empty, but blobs/ holds files")
        }
        index = try StoreIndex(path: indexPath, busyTimeout: indexBusyTimeout)
    }

    /// The store's codec policy (persisted in the index).
    public func codecPolicy() throws -> CodecPolicy {
        try index.database.read { db in try codecPolicy(in: db) }
    }

    /// The store's codec policy, read inside a database access.
    func codecPolicy(in db: Database) throws -> CodecPolicy {
        guard let json = try String.fetchOne(
            db, sql: "SELECT value FROM setting WHERE key = ?", arguments: [CodecPolicy.settingKey])
        else { return CodecPolicy() }
        return try JSONDecoder().decode(CodecPolicy.self, from: Data(json.utf8))
    }

    /// Changes which tensors new pushes compress. Existing blobs keep their encoding.
    public func setCodecPolicy(_ policy: CodecPolicy) throws {
        let json = String(decoding: try CanonicalJSON.encode(policy), as: UTF8.self)
        try index.database.write { db in
            try db.execute(
                sql: "INSERT INTO setting (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: [CodecPolicy.settingKey, json])
        }
    }
}
