import Glibc

/// Linux file calls that the Glibc module does not import (they sit behind `_GNU_SOURCE`), looked up in the
/// C library once.
enum LinuxFileCalls {
    private typealias SyncFilesystem = @convention(c) (Int32) -> Int32
    private typealias SyncFileRange = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32

    /// `SYNC_FILE_RANGE_WRITE`: start writing the range's dirty pages, and do not wait for them to be written.
    private static let syncFileRangeWrite: UInt32 = 2

    private static let syncfs = dlsym(nil, "syncfs").map { unsafeBitCast($0, to: SyncFilesystem.self) }
    private static let syncFileRange = dlsym(nil, "sync_file_range").map {
        unsafeBitCast($0, to: SyncFileRange.self)
    }

    /// Flushes everything written to the filesystem holding the open `descriptor` (data, inodes and folders)
    /// and waits; where the C library lacks `syncfs`, `sync` flushes every filesystem. Returns false on
    /// failure, with `errno` set.
    static func syncFilesystem(_ descriptor: Int32) -> Bool {
        guard let syncfs else {
            sync()
            return true
        }
        return syncfs(descriptor) == 0
    }

    /// Asks the kernel to start writing `count` bytes of the file from `offset` to storage, without waiting
    /// for the writes to complete (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`; it blocks only while the
    /// device's request queue is full). Only a head start for a flush that comes later: it does nothing
    /// where the call is missing, and an error is left for that flush to report.
    static func startWriteback(_ descriptor: Int32, offset: Int, count: Int) {
        _ = syncFileRange?(descriptor, Int64(offset), Int64(count), syncFileRangeWrite)
    }
}
