import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A large anonymous mapping advised for transparent huge pages, as the merge engine's output buffer is, so
/// that the reference bandwidths pay the same page-table costs as the merges they are compared with.
final class HugePageBuffer {
    /// The mapped bytes (page-aligned).
    let bytes: UnsafeMutableRawBufferPointer

    /// Maps `byteCount` bytes (not yet touched).
    init(byteCount: Int) throws {
        let count = max(byteCount, 1)
        guard let address = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              address != UnsafeMutableRawPointer(bitPattern: -1)
        else { throw POSIXError(.ENOMEM) }
        // Advice only: without transparent huge pages the mapping works with 4 KiB pages.
        _ = madvise(address, count, MADV_HUGEPAGE)
        bytes = UnsafeMutableRawBufferPointer(start: address, count: count)
    }

    deinit {
        munmap(bytes.baseAddress, bytes.count)
    }
}
