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
        private let idle = Mutex<[ScratchBuffer]>([])

        /// A pool that keeps up to `capacity` idle buffers, the largest ones.
        init(keeping capacity: Int = 1) {
            self.capacity = max(1, capacity)
        }

        /// A buffer of at least `byteCount` bytes: the smallest idle one that is large enough, else a new one.
        func take(atLeast byteCount: Int) -> ScratchBuffer {
            let reused = idle.withLock { buffers -> ScratchBuffer? in
                let fitting = buffers.indices.filter { buffers[$0].bytes.count >= byteCount }
                guard let index = fitting.min(by: { buffers[$0].bytes.count < buffers[$1].bytes.count }) else {
                    return nil
                }
                return buffers.remove(at: index)
            }
            return reused ?? ScratchBuffer(byteCount: byteCount)
        }

        /// Keeps `buffer` for the next merge, unless the pool already keeps as many buffers, all larger.
        func recycle(_ buffer: ScratchBuffer) {
            idle.withLock { buffers in
                buffers.append(buffer)
                buffers.sort { $0.bytes.count > $1.bytes.count }
                buffers.removeSubrange(min(capacity, buffers.count)...)
            }
        }
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
