import Foundation
import Synchronization

/// Raw blob files kept mapped between reads, the least recently used unmapped first.
///
/// The kernel fills a mapping's page table on first touch, one entry per 4 KiB page, and empties it again
/// on unmapping: for a 23 MB tensor in the page cache 0.6–0.9 ms and 0.2–0.6 ms (measured in a C probe),
/// together a fifth of the CPU time of a BF16 rank-16 merge. Merging several builds of one base in one process (a
/// server, the demo, the benchmarks) then maps each base tensor once instead of once per build.
///
/// What stays mapped is address space and page tables (about 2 MB per GB); the pages themselves belong to
/// the page cache, which the kernel reclaims under memory pressure as it would without the mapping. They
/// count in the process's resident file pages (`RssFile`), not in its own memory (`RssAnon`).
///
/// A hit is checked against the file on disk (device, inode, size), so a blob file that was removed,
/// replaced or truncated since it was mapped is never read through a stale mapping. A mapping also keeps
/// its file's disk space after the file is removed, so the kept ones are checked the same way every
/// `sweepInterval` of reads, and those of files gone are released: a `gc` or cache eviction run by another
/// process (the CLI beside a server) frees its disk space by the server's next read after it.
final class BlobMappings: Sendable {
    /// Bytes of files kept mapped: past this, the least recently used mappings are released (each unmaps
    /// when its last reader lets go of it).
    let capacity: Int

    private struct Entry {
        let mapping: MappedFile
        let lastUse: UInt64
    }

    /// How often reads look for kept mappings of files removed since.
    let sweepInterval: Duration

    private struct State {
        var entries: [Digest: Entry] = [:]
        var bytes = 0
        var clock: UInt64 = 0
        var lastSweep: ContinuousClock.Instant?

        /// Keeps `mapping` as the most recently used one for `digest`.
        mutating func keep(_ mapping: MappedFile, for digest: Digest) {
            release(digest)
            clock += 1
            entries[digest] = Entry(mapping: mapping, lastUse: clock)
            bytes += mapping.bytes.count
        }

        /// Stops keeping `digest`'s mapping, if any.
        mutating func release(_ digest: Digest) {
            if let entry = entries.removeValue(forKey: digest) { bytes -= entry.mapping.bytes.count }
        }
    }

    private let state = Mutex(State())

    /// A quarter of the machine's memory by default: enough for the bases a server merges from, while
    /// their page tables stay a fraction of a percent of it.
    init(capacity: Int = Int(clamping: ProcessInfo.processInfo.physicalMemory / 4), sweepInterval: Duration = .seconds(10)) {
        self.capacity = capacity
        self.sweepInterval = sweepInterval
    }

    /// The mapping of `digest`'s file at `path`: the kept one when it still maps that file, else a new one.
    /// - Throws: ``BlobStoreError/missing(_:)`` when there is no file, ``FileAccessError`` when it cannot be mapped.
    func mapping(of digest: Digest, path: String) throws -> MappedFile {
        releaseRemovedIfDue()
        guard let current = FileIdentity(path: path) else { throw BlobStoreError.missing(digest) }
        let kept = state.withLock { state -> MappedFile? in
            guard let mapping = state.entries[digest]?.mapping else { return nil }
            guard mapping.identity == current else {
                state.release(digest)
                return nil
            }
            state.keep(mapping, for: digest)
            return mapping
        }
        if let kept { return kept }
        let mapping = try MappedFile(url: URL(fileURLWithPath: path))
        state.withLock { state in
            state.keep(mapping, for: digest)
            while state.bytes > capacity,
                  let oldest = state.entries.lazy.filter({ $0.key != digest }).min(by: { $0.value.lastUse < $1.value.lastUse }) {
                state.release(oldest.key)
            }
        }
        return mapping
    }

    /// Releases the kept mappings whose file is gone or replaced, unless that was checked less than
    /// `sweepInterval` ago. The files are inspected outside the lock.
    private func releaseRemovedIfDue() {
        let now = ContinuousClock.now
        let kept = state.withLock { state -> [(digest: Digest, path: String, identity: FileIdentity)]? in
            if let last = state.lastSweep, now - last < sweepInterval { return nil }
            state.lastSweep = now
            return state.entries.map { ($0.key, $0.value.mapping.url.path, $0.value.mapping.identity) }
        }
        let stale = (kept ?? []).filter { FileIdentity(path: $0.path) != $0.identity }
        guard !stale.isEmpty else { return }
        state.withLock { state in
            for entry in stale where state.entries[entry.digest]?.mapping.identity == entry.identity {
                state.release(entry.digest)
            }
        }
    }

    /// Releases the kept mapping of `digest`, if any (its file is being removed).
    func forget(_ digest: Digest) {
        state.withLock { $0.release(digest) }
    }

    /// Bytes of files kept mapped now.
    var mappedBytes: Int { state.withLock { $0.bytes } }
}
