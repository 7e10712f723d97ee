import Foundation

extension Store {
    /// Runs `body` while holding the store's maintenance lock in `mode`.
    ///
    /// Writers of new blobs hold it shared until their commit (a push from its first read of the tensors, a
    /// batch push from its first blob write, a registry upload from its first byte, a materialization from
    /// its merge); garbage collection and repair hold it exclusive while they sweep. So a blob file that is
    /// written but not yet indexed, or a temporary file on its way to becoming one, is never swept, whatever
    /// the grace period.
    ///
    /// - Throws: ``StoreError/maintenanceBusy(waited:)`` when ``maintenanceWait`` passes first.
    func withMaintenanceLock<T>(_ mode: FileLock.Mode, _ body: () throws -> T) throws -> T {
        let lock = try maintenanceLock(mode, waitingAtMost: maintenanceWait)
        defer { lock.unlock() }
        return try body()
    }

    /// Takes the maintenance lock shared for a writer whose work spans many calls, such as a registry
    /// receiving an upload, waiting at most `limit` or ``maintenanceWait``, whichever is shorter (nil: no
    /// limit of that kind). The writer keeps the lock until its work is committed, then unlocks it (or drops
    /// it): a collection that would start meanwhile waits for it, instead of sweeping the upload's spool
    /// file or making its commit wait (and then refusing the blob once every byte had arrived).
    ///
    /// - Throws: ``StoreError/maintenanceBusy(waited:)`` when the wait ends first.
    public func holdMaintenance(atMost limit: Duration? = nil) throws -> FileLock {
        try maintenanceLock(.shared, waitingAtMost: [limit, maintenanceWait].compactMap { $0 }.min())
    }

    /// Runs `body` holding the maintenance lock exclusively if nobody holds it now, else returns nil at once:
    /// for cleanups that can wait for the next garbage collection rather than for a writer.
    func withMaintenanceLockIfFree<T>(_ body: () throws -> T) throws -> T? {
        let lock = try maintenanceLock()
        guard try lock.tryLock(.exclusive) else { return nil }
        defer { lock.unlock() }
        return try body()
    }

    /// The maintenance lock, taken in `mode` after waiting at most `wait` (nil: as long as it takes).
    private func maintenanceLock(_ mode: FileLock.Mode, waitingAtMost wait: Duration?) throws -> FileLock {
        let lock = try maintenanceLock()
        if let wait {
            guard try lock.lock(mode, waitingAtMost: wait) else { throw StoreError.maintenanceBusy(waited: wait) }
        } else {
            try lock.lock(mode)
        }
        return lock
    }

    private func maintenanceLock() throws -> FileLock {
        let folder = root.appending(path: "locks")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return try FileLock(path: folder.appending(path: "maintenance.lock").path)
    }
}
