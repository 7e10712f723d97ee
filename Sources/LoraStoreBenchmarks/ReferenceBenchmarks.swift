import CSIMDKernels
import Dispatch
import Foundation
import LoraStoreCore

/// Bandwidths every other figure is divided by, measured in the same run.
struct ReferenceBandwidths {
    /// In-place read-and-rewrite of a large buffer on every core (bytes of buffer per second).
    var readRewrite: Double
    /// The same on one core.
    var readRewriteSingle: Double
    /// memcpy between two large buffers on every core (bytes copied per second).
    var memcpy: Double
    var memcpySingle: Double
    /// read() + write() of a large file into a new one, left in the page cache.
    var fileCopyCached: Double
    /// The same, then fsync.
    var fileCopySynced: Double
    /// F32 fused multiply-adds per second on every core, with the vectors of the merge kernel's implementation
    /// and no memory traffic: the ceiling of a merge whose rank makes it compute-bound.
    var multiplyAdds: Double
}

/// The reference bandwidths.
enum ReferenceBenchmarks {
    static func run(options: BenchmarkOptions, workspace: Workspace, report: inout BenchmarkReport) throws -> ReferenceBandwidths {
        let size = options.memoryReferenceSize
        let fileSize = options.referenceSize
        let cores = ProcessInfo.processInfo.activeProcessorCount
        report.begin(
            "Reference bandwidths",
            method: [
                "Every speed below is divided by one of these, measured in the same run (best of \(options.repetitions)).",
                "- *read-and-rewrite*: each thread XORs its share of a \(Format.bytes(size)) buffer in place, 64 bytes at a time "
                    + "(every byte read once and written once) — what a merge into a fresh buffer must at least do. The "
                    + "buffers are anonymous mappings advised for transparent huge pages, as the merge's output buffer is, "
                    + "touched before timing.",
                "- *memcpy*: each thread copies its share between two \(Format.bytes(size)) buffers.",
                "- *file copy*: `read`/`write` of a \(Format.bytes(fileSize)) file (in the page cache) into a new file with an 8 MiB buffer, "
                    + "one thread like `cp`; *synced* adds `fsync` before the clock stops.",
                "- *fused multiply-add*: each thread runs twelve independent chains of F32 fused multiply-adds in registers, "
                    + "\(LowRankKernel.Implementation.preferred == .avx512 ? "16 lanes (AVX-512" : "8 lanes (SIMD8")"
                    + ", the merge kernel's \(LowRankKernel.Implementation.preferred) implementation); counted in lanes. "
                    + "A rank-r merge needs r of them per weight element, so this bounds it when r is large.",
            ],
            columns: ["reference", "threads", "bandwidth"])
        let buffer = ScratchBuffer(byteCount: size)
        buffer.bytes.initializeMemory(as: UInt8.self, repeating: 1)
        var references = ReferenceBandwidths(
            readRewrite: 0, readRewriteSingle: 0, memcpy: 0, memcpySingle: 0, fileCopyCached: 0, fileCopySynced: 0,
            multiplyAdds: 0)
        var pass: UInt32 = 0
        for threads in [cores, 1] {
            let seconds = Timing.best(options.repetitions) {
                pass &+= 1
                readRewrite(buffer.bytes, threads: threads, mask: pass)
            }
            let rate = Double(size) / seconds
            if threads == cores { references.readRewrite = rate } else { references.readRewriteSingle = rate }
            report.row(["in-place read-and-rewrite", "\(threads)", Format.rate(rate)])
        }
        let destination = ScratchBuffer(byteCount: size)
        destination.bytes.initializeMemory(as: UInt8.self, repeating: 0)
        for threads in [cores, 1] {
            let seconds = Timing.best(options.repetitions) { copy(buffer.bytes, into: destination.bytes, threads: threads) }
            let rate = Double(size) / seconds
            if threads == cores { references.memcpy = rate } else { references.memcpySingle = rate }
            report.row(["memcpy", "\(threads)", Format.rate(rate)])
        }

        let source = workspace.fresh("reference-source.bin")
        let fileBytes = UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<fileSize])
        try SyntheticRandom.fill(fileBytes, dtype: .bf16, distribution: .normal(mean: 0, standardDeviation: 0.02), seed: 99)
        let sourceFile = try WritableFile(creating: source.path)
        try sourceFile.write(UnsafeRawBufferPointer(fileBytes))
        try sourceFile.close()
        Workspace.flush()
        for synced in [false, true] {
            var seconds = Double.infinity
            for _ in 0..<options.repetitions {
                let target = workspace.fresh("reference-copy.bin")
                seconds = min(seconds, try Timing.seconds { try FileCopy.copy(source, to: target, sync: synced) })
                try? FileManager.default.removeItem(at: target)
                Workspace.flush()
            }
            let rate = Double(fileSize) / seconds
            if synced { references.fileCopySynced = rate } else { references.fileCopyCached = rate }
            report.row([synced ? "file copy, fsync" : "file copy, page cache", "1", Format.rate(rate)])
        }
        try? FileManager.default.removeItem(at: source)

        // About a quarter of a second per repetition. With 20 M rounds (50 ms) one run read the peak on every
        // core as barely above one core's, while the same loop run longer scales with the cores.
        var singleMultiplyAdds = 0.0
        for threads in [cores, 1] {
            let rounds = options.quick ? 10_000_000 : 100_000_000
            let seconds = Timing.best(options.repetitions) { multiplyAddChains(rounds: rounds, threads: threads) }
            let rate = Double(rounds * multiplyAddsPerRound * threads) / seconds
            if threads == cores { references.multiplyAdds = rate } else { singleMultiplyAdds = rate }
            report.row(["fused multiply-add", "\(threads)", String(format: "%.1f G multiply-adds/s", rate / 1e9)])
        }
        if cores > 1, references.multiplyAdds < 0.9 * Double(cores) * singleMultiplyAdds {
            report.note(
                "The fused multiply-add peak on \(cores) threads is below \(cores)× the 1-thread one: cores were not all "
                    + "free during the run (another process, or a busy neighbour of this machine's virtual CPUs), so "
                    + "the ceilings and floors computed from it below are lower than the hardware's.")
        }
        return references
    }

    /// Lanes of fused multiply-add in one round of ``multiplyAddChains(rounds:threads:)``: twelve chains.
    static var multiplyAddsPerRound: Int {
        12 * (LowRankKernel.Implementation.preferred == .avx512 ? 16 : 8)
    }

    /// Twelve chains of SIMD8 fused multiply-adds, each in its own variable so that all stay in registers.
    static func portableChains(rounds: Int) -> Float {
        let a = SIMD8<Float>(repeating: 0.999), b = SIMD8<Float>(repeating: 0.001)
        var c0 = SIMD8<Float>(repeating: 0), c1 = SIMD8<Float>(repeating: 1), c2 = SIMD8<Float>(repeating: 2)
        var c3 = SIMD8<Float>(repeating: 3), c4 = SIMD8<Float>(repeating: 4), c5 = SIMD8<Float>(repeating: 5)
        var c6 = SIMD8<Float>(repeating: 6), c7 = SIMD8<Float>(repeating: 7), c8 = SIMD8<Float>(repeating: 8)
        var c9 = SIMD8<Float>(repeating: 9), c10 = SIMD8<Float>(repeating: 10), c11 = SIMD8<Float>(repeating: 11)
        for _ in 0..<rounds {
            c0 = c0.addingProduct(a, b); c1 = c1.addingProduct(a, b); c2 = c2.addingProduct(a, b)
            c3 = c3.addingProduct(a, b); c4 = c4.addingProduct(a, b); c5 = c5.addingProduct(a, b)
            c6 = c6.addingProduct(a, b); c7 = c7.addingProduct(a, b); c8 = c8.addingProduct(a, b)
            c9 = c9.addingProduct(a, b); c10 = c10.addingProduct(a, b); c11 = c11.addingProduct(a, b)
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).sum()
    }

    /// `rounds` rounds of twelve independent fused multiply-add chains on each of `threads` threads, with the
    /// vectors the merge kernel uses on this CPU.
    static func multiplyAddChains(rounds: Int, threads: Int) {
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            let result: Float
            if LowRankKernel.Implementation.preferred == .avx512 {
                result = lorastore_fma_chains_avx512(rounds)
            } else {
                result = portableChains(rounds: rounds)
            }
            // Keeps the chains from being optimised away.
            if result.isNaN { print("fused multiply-add chains produced NaN") }
        }
    }

    /// XORs every 64-byte lane of `buffer` with `mask`, `threads` contiguous shares in parallel.
    static func readRewrite(_ buffer: UnsafeMutableRawBufferPointer, threads: Int, mask: UInt32) {
        guard let base = buffer.baseAddress else { return }
        let lanes = buffer.count / 64
        let shared = SharedBuffer(base: base)
        let pattern = SIMD16<UInt32>(repeating: mask)
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            let pointer = shared.base
            for lane in share(thread, of: threads, count: lanes) {
                let offset = lane &* 64
                let value = pointer.load(fromByteOffset: offset, as: SIMD16<UInt32>.self)
                pointer.storeBytes(of: value ^ pattern, toByteOffset: offset, as: SIMD16<UInt32>.self)
            }
        }
    }

    /// Copies `source` into `destination` (same size), `threads` contiguous shares in parallel.
    static func copy(_ source: UnsafeMutableRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, threads: Int) {
        guard let sourceBase = source.baseAddress, let destinationBase = destination.baseAddress else { return }
        let from = SharedBuffer(base: sourceBase)
        let to = SharedBuffer(base: destinationBase)
        let count = source.count
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            let range = share(thread, of: threads, count: count)
            to.base.advanced(by: range.lowerBound)
                .copyMemory(from: from.base.advanced(by: range.lowerBound), byteCount: range.count)
        }
    }

    static func share(_ index: Int, of parts: Int, count: Int) -> Range<Int> {
        (count * index / parts)..<(count * (index + 1) / parts)
    }

    /// A buffer the worker threads share; each touches its own share only.
    private struct SharedBuffer: @unchecked Sendable {
        let base: UnsafeMutableRawPointer
    }
}
