#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A large buffer of fresh memory: the merge engine's output, and a compressed blob's decoded bytes.
///
/// Fresh memory costs a page fault and a zeroed page on its first touch. On Linux a buffer of 2 MiB or more
/// is its own anonymous mapping advised for transparent huge pages (`MADV_HUGEPAGE`), so a 44 MiB tensor
/// takes 22 faults of 2 MiB instead of 11 264 of 4 KiB, and the stores into it need fewer TLB entries;
/// smaller ones come from `malloc`, where a mapping of their own would cost more system calls than it
/// saves. Measured on this project's 2-core machine, writing 64 MiB of fresh memory: 15 ms with `malloc`,
/// 3.9 ms mapped with huge pages (best of 5; a write of memory already touched takes 1.8 ms).
///
/// The merge engine keeps its idle buffers for the process's next merge (``Pool/shared``), so builds
/// materialized one after another, as a server or the demo does, touch fresh memory once. Measured on a
/// 1.14 GiB F32 base with a rank-8 adapter (2 cores, merges one after another in one process, best of 8):
/// 58–61 ms per merge with a new `malloc` buffer each, 51 ms with huge pages, 44 ms with huge pages and the
/// kept buffer.
///
/// Public so that the benchmarks measure their reference bandwidths, in-memory merges and decodes on memory
/// of the same kind (``init(byteCount:)``).
public final class ScratchBuffer: @unchecked Sendable {
    // @unchecked: one merge or one blob read uses a buffer at a time; the idle slot hands it over under a lock.

    /// The writable bytes, 64-byte aligned (page-aligned when mapped), not yet touched.
    public let bytes: UnsafeMutableRawBufferPointer
    private let isMapped: Bool

    /// Hands out buffers and keeps idle ones for the next merge.
    final class Pool: Sendable {
        /// The pool of the merge engine's outputs: one per process. It keeps two, as a merge writes one
        /// tensor into one while its consumer reads the previous one from the other.
        static let shared = Pool(keeping: 2)
        /// The pool of the F32 deltas a measured merge computes beside its output: its own, so that each
        /// pool keeps buffers of its own kind's size.
        static let deltas = Pool()

        /// How many idle buffers the pool keeps.
        let capacity: Int
        private let state = Mutex(State())

        /// The idle buffers, and when a buffer was last taken or given back.
        private struct State {
            var idle: [ScratchBuffer] = []
            var lastUse = ContinuousClock.now
        }

        /// A pool that keeps up to `capacity` idle buffers, the largest ones.
        init(keeping capacity: Int = 1) {
            self.capacity = max(1, capacity)
        }

        /// A buffer of at least `byteCount` bytes: the smallest idle one that is large enough, else a new one.
        func take(atLeast byteCount: Int) -> ScratchBuffer {
            let reused = state.withLock { state -> ScratchBuffer? in
                state.lastUse = .now
                let fitting = state.idle.indices.filter { state.idle[$0].bytes.count >= byteCount }
                guard let index = fitting.min(by: { state.idle[$0].bytes.count < state.idle[$1].bytes.count }) else {
                    return nil
                }
                return state.idle.remove(at: index)
            }
            return reused ?? ScratchBuffer(byteCount: byteCount)
        }

        /// Keeps `buffer` for the next merge, unless the pool already keeps as many buffers, all larger.
        func recycle(_ buffer: ScratchBuffer) {
            state.withLock { state in
                state.lastUse = .now
                state.idle.append(buffer)
                state.idle.sort { $0.bytes.count > $1.bytes.count }
                state.idle.removeSubrange(min(capacity, state.idle.count)...)
            }
        }

        /// Gives the idle buffers back to the system when no buffer was taken or given back for `duration`
        /// before `now`, and returns their bytes.
        func releaseIdle(unusedFor duration: Duration, now: ContinuousClock.Instant = .now) -> Int {
            let released = state.withLock { state -> [ScratchBuffer] in
                guard now - state.lastUse >= duration else { return [] }
                defer { state.idle.removeAll() }
                return state.idle
            }
            return released.reduce(0) { $0 + $1.bytes.count }
        }
    }

    /// Gives the merge engine's idle buffers back to the system when no merge has used them for `duration`,
    /// and returns their bytes. The engine keeps them so that merges one after another touch fresh memory
    /// once, but after a large merge they can hold gigabytes: a long-running process (a registry) calls this
    /// now and then so that an idle process holds no more than it needs.
    public static func releaseIdleBuffers(unusedFor duration: Duration) -> Int {
        Pool.shared.releaseIdle(unusedFor: duration) + Pool.deltas.releaseIdle(unusedFor: duration)
    }

    /// Bytes from which a buffer is a mapping of its own: one transparent huge page.
    static let mappedThreshold = 2 << 20

    /// A buffer of `byteCount` bytes of its own, outside the pool.
    public init(byteCount: Int) {
        let count = max(byteCount, 1)
        #if os(Linux)
        let address = count >= Self.mappedThreshold
            ? mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : nil
        if let address, address != UnsafeMutableRawPointer(bitPattern: -1) {
            // Advice only: without transparent huge pages the mapping works with 4 KiB pages.
            _ = madvise(address, count, MADV_HUGEPAGE)
            bytes = UnsafeMutableRawBufferPointer(start: address, count: count)
            isMapped = true
            return
        }
        #endif
        bytes = .allocate(byteCount: count, alignment: 64)
        isMapped = false
    }

    deinit {
        if isMapped {
            munmap(bytes.baseAddress, bytes.count)
        } else {
            bytes.deallocate()
        }
    }
}
