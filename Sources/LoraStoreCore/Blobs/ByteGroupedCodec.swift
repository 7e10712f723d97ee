import CZlib
import Dispatch
import Foundation

/// Compresses tensor bytes by splitting them into byte planes and deflating each plane on its own.
///
/// Floating-point weights compress poorly as a byte stream, but byte plane `p` (byte `p` of every
/// little-endian element) behaves very differently from plane to plane: the plane that carries the exponent
/// (byte 1 of BF16 and F16, byte 3 and partly byte 2 of F32) holds few distinct values and entropy-codes to
/// roughly 60–70 % of its size, while the low mantissa planes are close to random. This is the idea behind
/// ZipNN. Planes that gain less than a threshold are stored as they are, so nobody pays inflate time for
/// nothing, and a tensor where no plane gains is not encoded at all (``encode(_:elementWidth:minimumGain:)``
/// returns `nil` and the store keeps it raw).
///
/// Deflate runs with `Z_HUFFMAN_ONLY` at level 1 by default: entropy coding is all an exponent plane needs, and
/// LZ matching finds nothing in weights but costs time and even ratio (its blocks pay for match codes). Measured
/// with `CodecProbe` on 64 MiB of N(0, 0.02) weights (F32 rounded to nearest even for BF16, F16), 1 MiB chunks,
/// one thread, CPU time, zlib 1.2.13, shared 2-core x86_64 Xeon; ratio = encoded / raw, MB/s of logical bytes:
///
/// | strategy, level | BF16 ratio, enc, dec | F16 ratio, enc, dec | F32 ratio, enc, dec |
/// |-----------------|----------------------|---------------------|---------------------|
/// | Huffman only, 1 | 0.670, 151, 325      | 0.844, 147, 302     | 0.835, 256, 622     |
/// | RLE, 1          | 0.672, 122, 316      | 0.844, 146, 273     | 0.836, 220, 591     |
/// | default, 1      | 0.722,  78, 289      | 0.869,  64, 263     | 0.861, 148, 575     |
/// | default, 6      | 0.705,  10, 300      | 0.857,  29, 283     | 0.852,  20, 615     |
///
/// Without byte grouping, Huffman-only deflate of the BF16 bytes reaches only 0.782 (default level 6: 0.795).
/// Decoding is bound by zlib's inflate (about 175–210 MB/s of plane bytes on that machine); with two threads
/// the chunks decode BF16 at 589 MB/s wall-clock (337 MB/s with one). Chunk lengths from 64 KiB to 1 GiB
/// made no measurable difference to ratio or single-thread speed.
///
/// Every plane is cut into chunks of `chunkLength` bytes (1 MiB by default) that are deflated as independent
/// streams. Chunks are encoded and decoded concurrently when more than one core is available; the chunking is
/// fixed by the format, so the encoding is byte-identical whatever the number of threads.
///
/// The blob's digest is computed over the logical bytes, never over this encoding. The streams carry no
/// checksum of their own (raw deflate): the decoder checks every length and bound and that each stream fills
/// its chunk exactly; `verify --deep` checks the digest of what it decodes.
///
/// ## Format, version 1
///
/// All integers are little-endian.
///
/// | offset | size | field                                                              |
/// |-------:|-----:|--------------------------------------------------------------------|
/// |      0 |    4 | magic `"LSBG"`                                                     |
/// |      4 |    1 | format version, `1`                                                |
/// |      5 |    1 | element width `W` in bytes: 1, 2, 4 or 8                           |
/// |      6 |    8 | logical byte count `N` (u64), a multiple of `W`                    |
/// |     14 |    4 | chunk length `C` in plane bytes (u32, > 0)                         |
/// |     18 |    1 | plane count, equal to `W`                                          |
/// |     19 | 9·W  | per plane: method (u8: 0 stored, 1 deflate), payload length (u64)  |
///
/// The plane payloads follow in plane order and end the encoding. Each plane has `N / W` bytes, cut into
/// `K = ⌈(N / W) / C⌉` chunks of `C` bytes (the last may be shorter).
/// - A *stored* payload is the plane's bytes.
/// - A *deflate* payload is a chunk table of `K` u32 compressed lengths followed by the `K` raw-deflate
///   streams (RFC 1951) in chunk order; stream `k` decodes to exactly the bytes of chunk `k`.
///
/// Width 1 has a single plane: plain chunked deflate of the whole.
public enum ByteGroupedCodec {
    /// Encodes `bytes`, read as little-endian elements of `elementWidth` bytes, or returns `nil` when the
    /// encoding is not worth storing.
    ///
    /// Returns `nil` — the caller then stores the bytes raw — when:
    /// - `elementWidth` is not 1, 2, 4 or 8, or `bytes.count` is not a multiple of it;
    /// - no plane shrinks by at least `minimumGain` (a fraction of its size), or the whole encoding would not
    ///   be smaller than `bytes`. A `minimumGain` of zero or less always yields an encoding;
    /// - zlib cannot allocate its state.
    ///
    /// Planes that shrink by less than `minimumGain` are stored raw inside the encoding. A plane whose byte
    /// histogram and run count show that it cannot reach `minimumGain` is not even tried, which keeps
    /// near-random mantissa planes from costing deflate time.
    public static func encode(
        _ bytes: UnsafeRawBufferPointer,
        elementWidth: Int,
        minimumGain: Double = 0.03
    ) -> [UInt8]? {
        encode(bytes, elementWidth: elementWidth, minimumGain: minimumGain, configuration: .default)
    }

    /// The number of logical bytes `encoded` decodes to, after validating its header and chunk tables.
    ///
    /// Size the output buffer of ``decode(_:into:)`` with it.
    public static func decodedSize(_ encoded: UnsafeRawBufferPointer) throws(BlobCodecError) -> Int {
        try Layout(parsing: encoded).logicalCount
    }

    /// Decodes `encoded` into `output`, which must hold exactly ``decodedSize(_:)`` bytes.
    ///
    /// Damaged or hostile input never reads or writes out of bounds: it throws a ``BlobCodecError``. On error
    /// the contents of `output` are unspecified.
    public static func decode(
        _ encoded: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(BlobCodecError) {
        try decode(encoded, into: output, maximumConcurrency: Configuration.default.maximumConcurrency)
    }
}

// MARK: - Configuration

extension ByteGroupedCodec {
    /// Encoder settings; the public API uses ``default``. Tests and measurements vary them.
    package struct Configuration: Sendable {
        /// The deflate level, 1 (fastest) to 9 (smallest).
        package var level: Int32
        /// A zlib strategy constant (`Z_HUFFMAN_ONLY`, `Z_RLE`, `Z_DEFAULT_STRATEGY`, …).
        package var strategy: Int32
        /// Plane bytes per independently deflated chunk, 1 to `UInt32.max`.
        package var chunkLength: Int
        /// The largest number of threads used; it never changes the encoding.
        package var maximumConcurrency: Int

        package init(level: Int32, strategy: Int32, chunkLength: Int, maximumConcurrency: Int) {
            self.level = level
            self.strategy = strategy
            self.chunkLength = chunkLength
            self.maximumConcurrency = maximumConcurrency
        }

        package static let `default` = Configuration(
            level: 1,
            strategy: Z_HUFFMAN_ONLY,
            chunkLength: 1 << 20,
            maximumConcurrency: ProcessInfo.processInfo.activeProcessorCount
        )
    }
}

// MARK: - Encoding

extension ByteGroupedCodec {
    private static let magic: [UInt8] = Array("LSBG".utf8)
    private static let formatVersion: UInt8 = 1
    private static let fixedHeaderSize = 19
    private static let planeEntrySize = 9
    private static let chunkEntrySize = 4
    /// Deflate's largest expansion: 258 bytes from a 2-bit match. A chunk claiming more is corrupt.
    private static let maximumExpansion = 1032

    private enum Method: UInt8 {
        case stored = 0
        case deflate = 1
    }

    /// Planes where at least this fraction of bytes repeats its predecessor (zero-filled tensors, padding) are
    /// deflated with `Z_RLE`: on 64 MiB of zeros it gives a ratio of 0.001 at 345 MB/s where Huffman coding
    /// alone gives 0.126 at 115 MB/s. Weight planes repeat far less (about 1 byte in 10 for an exponent plane).
    private static let runLengthThreshold = 0.5

    private static func isSupported(width: Int) -> Bool {
        width == 1 || width == 2 || width == 4 || width == 8
    }

    /// ``encode(_:elementWidth:minimumGain:)`` with explicit settings.
    package static func encode(
        _ bytes: UnsafeRawBufferPointer,
        elementWidth width: Int,
        minimumGain: Double,
        configuration: Configuration
    ) -> [UInt8]? {
        guard isSupported(width: width), bytes.count % width == 0, !minimumGain.isNaN,
              configuration.chunkLength > 0, UInt32(exactly: configuration.chunkLength) != nil
        else { return nil }

        let geometry = Geometry(planeLength: bytes.count / width, width: width, chunkLength: configuration.chunkLength)
        let statistics = PlaneStatistics(bytes, width: width)
        let candidates = statistics.estimatedGains.map { $0 >= minimumGain }
        let strategies = statistics.repeatFractions.map {
            $0 >= runLengthThreshold ? Z_RLE : configuration.strategy
        }
        if minimumGain > 0, !candidates.contains(true) { return nil }

        // Every plane first gets a slot large enough for its worst case, so chunks can be written concurrently
        // at offsets known in advance; the slots are compacted afterwards (always towards lower offsets).
        let headerSize = fixedHeaderSize + width * planeEntrySize
        let chunkBound = Zlib.compressBound(geometry.chunkLength)
        let deflateSlotSize = geometry.chunkCount == 0
            ? 0
            : geometry.chunkCount * chunkEntrySize + (geometry.chunkCount - 1) * chunkBound
                + Zlib.compressBound(geometry.length(ofChunk: geometry.chunkCount - 1))
        var slotStarts: [Int] = []
        var capacity = headerSize
        for isCandidate in candidates {
            slotStarts.append(capacity)
            capacity += isCandidate ? deflateSlotSize : geometry.planeLength
        }

        var methods: [Method] = []
        let encoded = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initializedCount in
            let output = UnsafeMutableRawBufferPointer(buffer)
            let plan = EncodePlan(
                input: bytes, output: output, geometry: geometry, candidates: candidates, strategies: strategies,
                slotStarts: slotStarts, chunkBound: chunkBound, configuration: configuration
            )
            guard let compressedLengths = plan.compressChunks() else { return }
            var cursor = headerSize
            var payloadLengths: [Int] = []
            for plane in 0..<width {
                let method: Method
                let payloadLength: Int
                if candidates[plane] {
                    let lengths = compressedLengths[plane * geometry.chunkCount..<(plane + 1) * geometry.chunkCount]
                    let deflatedLength = geometry.chunkCount * chunkEntrySize + lengths.reduce(0, +)
                    let gain = 1 - Double(deflatedLength) / Double(max(geometry.planeLength, 1))
                    if deflatedLength < geometry.planeLength, gain >= minimumGain {
                        plan.compactDeflatedPlane(plane, lengths: lengths, to: cursor)
                        (method, payloadLength) = (.deflate, deflatedLength)
                    } else {
                        plan.gatherPlane(plane, to: cursor)
                        (method, payloadLength) = (.stored, geometry.planeLength)
                    }
                } else {
                    plan.moveStoredPlane(plane, to: cursor)
                    (method, payloadLength) = (.stored, geometry.planeLength)
                }
                methods.append(method)
                payloadLengths.append(payloadLength)
                cursor += payloadLength
            }
            writeHeader(
                into: output, geometry: geometry, logicalCount: bytes.count,
                methods: methods, payloadLengths: payloadLengths
            )
            initializedCount = cursor
        }
        guard methods.count == width else { return nil }
        if minimumGain > 0, !methods.contains(.deflate) || encoded.count >= bytes.count { return nil }
        return encoded
    }

    private static func writeHeader(
        into output: UnsafeMutableRawBufferPointer,
        geometry: Geometry,
        logicalCount: Int,
        methods: [Method],
        payloadLengths: [Int]
    ) {
        var offset = 0
        func write<T: FixedWidthInteger>(_ value: T) {
            output.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
            offset += MemoryLayout<T>.size
        }
        for byte in magic { write(byte) }
        write(formatVersion)
        write(UInt8(geometry.width))
        write(UInt64(logicalCount))
        write(UInt32(geometry.chunkLength))
        write(UInt8(geometry.width))
        for (method, length) in zip(methods, payloadLengths) {
            write(method.rawValue)
            write(UInt64(length))
        }
    }

    /// How planes are cut into chunks.
    private struct Geometry: Sendable {
        let planeLength: Int
        let width: Int
        let chunkLength: Int
        let chunkCount: Int

        init(planeLength: Int, width: Int, chunkLength: Int) {
            self.planeLength = planeLength
            self.width = width
            self.chunkLength = chunkLength
            chunkCount = planeLength / chunkLength + (planeLength % chunkLength == 0 ? 0 : 1)
        }

        func length(ofChunk chunk: Int) -> Int {
            min(chunkLength, planeLength - chunk * chunkLength)
        }
    }

    /// The buffers and offsets of one encoding, shared by the worker threads.
    private struct EncodePlan: @unchecked Sendable {
        let input: UnsafeRawBufferPointer
        let output: UnsafeMutableRawBufferPointer
        let geometry: Geometry
        let candidates: [Bool]
        let strategies: [Int32]
        let slotStarts: [Int]
        let chunkBound: Int
        let configuration: Configuration

        private func deflatedChunkStart(plane: Int, chunk: Int) -> Int {
            slotStarts[plane] + geometry.chunkCount * chunkEntrySize + chunk * chunkBound
        }

        /// Splits every chunk into planes, copies the planes not worth trying into their slots and deflates the
        /// others; returns the compressed length of every (plane, chunk), plane-major, or `nil` if zlib failed.
        func compressChunks() -> [Int]? {
            let chunkCount = geometry.chunkCount
            let workerCount = min(max(configuration.maximumConcurrency, 1), chunkCount)
            let perWorker = ChunkWorkers.run(workerCount: workerCount) { worker in
                compressChunks(worker: worker, workerCount: workerCount)
            }
            var lengths = [Int](repeating: 0, count: geometry.width * chunkCount)
            for (worker, workerLengths) in perWorker.enumerated() {
                guard let workerLengths else { return nil }
                for (index, chunk) in stride(from: worker, to: chunkCount, by: workerCount).enumerated() {
                    for plane in 0..<geometry.width {
                        lengths[plane * chunkCount + chunk] = workerLengths[index * geometry.width + plane]
                    }
                }
            }
            return lengths
        }

        /// Encodes chunks `worker`, `worker + workerCount`, …; returns their compressed lengths, chunk-major
        /// (zero for planes not deflated), or `nil` if zlib failed.
        private func compressChunks(worker: Int, workerCount: Int) -> [Int]? {
            guard var deflater = try? Zlib.Deflater(level: configuration.level, strategy: configuration.strategy)
            else { return nil }
            let width = geometry.width
            let scratch = UnsafeMutableRawBufferPointer.allocate(
                byteCount: width == 1 ? 0 : width * min(geometry.chunkLength, geometry.planeLength), alignment: 64
            )
            defer { scratch.deallocate() }
            var lengths: [Int] = []
            let succeeded = withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer.self, capacity: width) { planes in
                for chunk in stride(from: worker, to: geometry.chunkCount, by: workerCount) {
                    let count = geometry.length(ofChunk: chunk)
                    let source = input.baseAddress.unsafelyUnwrapped + chunk * geometry.chunkLength * width
                    if width == 1 {
                        planes[0] = UnsafeMutableRawPointer(mutating: source)
                    } else {
                        for plane in 0..<width {
                            planes[plane] = candidates[plane]
                                ? scratch.baseAddress.unsafelyUnwrapped + plane * count
                                : output.baseAddress.unsafelyUnwrapped + slotStarts[plane] + chunk * geometry.chunkLength
                        }
                        PlaneTransposer.split(source, elementCount: count, width: width, into: planes)
                    }
                    for plane in 0..<width {
                        if candidates[plane] {
                            let start = deflatedChunkStart(plane: plane, chunk: chunk)
                            let destination = UnsafeMutableRawBufferPointer(
                                rebasing: output[start..<start + Zlib.compressBound(count)]
                            )
                            let data = UnsafeRawBufferPointer(start: planes[plane], count: count)
                            guard let length = try? deflater.compress(data, into: destination, strategy: strategies[plane])
                            else { return false }
                            lengths.append(length)
                        } else {
                            if width == 1 {
                                let destination = output.baseAddress.unsafelyUnwrapped + slotStarts[plane]
                                    + chunk * geometry.chunkLength
                                destination.copyMemory(from: planes[plane], byteCount: count)
                            }
                            lengths.append(0)
                        }
                    }
                }
                return true
            }
            return succeeded ? lengths : nil
        }

        /// Writes a deflated plane's chunk table at `offset` and moves its streams right behind it.
        func compactDeflatedPlane(_ plane: Int, lengths: ArraySlice<Int>, to offset: Int) {
            let base = output.baseAddress.unsafelyUnwrapped
            var destination = offset + geometry.chunkCount * chunkEntrySize
            for (chunk, length) in lengths.enumerated() {
                output.storeBytes(
                    of: UInt32(length).littleEndian, toByteOffset: offset + chunk * chunkEntrySize, as: UInt32.self
                )
                let source = deflatedChunkStart(plane: plane, chunk: chunk)
                if source != destination {
                    (base + destination).copyMemory(from: base + source, byteCount: length)
                }
                destination += length
            }
        }

        /// Moves a plane that was split straight into its slot to `offset`.
        func moveStoredPlane(_ plane: Int, to offset: Int) {
            let base = output.baseAddress.unsafelyUnwrapped
            guard slotStarts[plane] != offset, geometry.planeLength > 0 else { return }
            memmove(base + offset, base + slotStarts[plane], geometry.planeLength)
        }

        /// Copies a plane straight from the input to `offset`, for a plane whose deflate did not pay off.
        func gatherPlane(_ plane: Int, to offset: Int) {
            guard geometry.planeLength > 0 else { return }
            let destination = output.baseAddress.unsafelyUnwrapped + offset
            let source = input.baseAddress.unsafelyUnwrapped + plane
            for index in 0..<geometry.planeLength {
                destination.storeBytes(
                    of: source.load(fromByteOffset: index * geometry.width, as: UInt8.self),
                    toByteOffset: index,
                    as: UInt8.self
                )
            }
        }
    }
}

// MARK: - Decoding

extension ByteGroupedCodec {
    /// ``decode(_:into:)`` with an explicit thread limit.
    package static func decode(
        _ encoded: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer,
        maximumConcurrency: Int
    ) throws(BlobCodecError) {
        let layout = try Layout(parsing: encoded)
        guard output.count == layout.logicalCount else {
            throw .outputSizeMismatch(expected: layout.logicalCount, actual: output.count)
        }
        let workerCount = min(max(maximumConcurrency, 1), layout.geometry.chunkCount)
        guard workerCount > 0 else { return }
        let plan = DecodePlan(input: encoded, output: output, layout: layout)
        let failures = ChunkWorkers.run(workerCount: workerCount) { worker in
            plan.decodeChunks(worker: worker, workerCount: workerCount)
        }
        if let failure = failures.compactMap({ $0 }).min(by: { $0.chunk < $1.chunk }) {
            throw failure.error
        }
    }

    /// The buffers of one decoding, shared by the worker threads.
    private struct DecodePlan: @unchecked Sendable {
        let input: UnsafeRawBufferPointer
        let output: UnsafeMutableRawBufferPointer
        let layout: Layout

        /// Decodes this worker's chunks; returns the first failure, if any.
        func decodeChunks(worker: Int, workerCount: Int) -> (chunk: Int, error: BlobCodecError)? {
            let geometry = layout.geometry
            let width = geometry.width
            guard var inflater = try? Zlib.Inflater() else {
                return (0, .zlibUnavailable("zlib could not allocate its inflate state"))
            }
            let scratch = UnsafeMutableRawBufferPointer.allocate(
                byteCount: width == 1 ? 0 : width * min(geometry.chunkLength, geometry.planeLength), alignment: 64
            )
            defer { scratch.deallocate() }
            return withUnsafeTemporaryAllocation(of: UnsafeRawPointer.self, capacity: width) { planes in
                for chunk in stride(from: worker, to: geometry.chunkCount, by: workerCount) {
                    let count = geometry.length(ofChunk: chunk)
                    let destination = output.baseAddress.unsafelyUnwrapped + chunk * geometry.chunkLength * width
                    for (index, plane) in layout.planes.enumerated() {
                        guard let streams = plane.streamOffsets else {
                            planes[index] = input.baseAddress.unsafelyUnwrapped + plane.payloadOffset
                                + chunk * geometry.chunkLength
                            continue
                        }
                        let target = width == 1 ? destination : scratch.baseAddress.unsafelyUnwrapped + index * count
                        do throws(Zlib.Failure) {
                            try inflater.decompress(
                                UnsafeRawBufferPointer(rebasing: input[streams[chunk]..<streams[chunk + 1]]),
                                into: UnsafeMutableRawBufferPointer(start: target, count: count)
                            )
                        } catch {
                            return (chunk, .corrupt("plane \(index), chunk \(chunk): \(Self.describe(error))"))
                        }
                        planes[index] = UnsafeRawPointer(target)
                    }
                    if width == 1 {
                        if planes[0] != UnsafeRawPointer(destination) {
                            destination.copyMemory(from: planes[0], byteCount: count)
                        }
                    } else {
                        PlaneTransposer.merge(UnsafeBufferPointer(planes), elementCount: count, width: width, into: destination)
                    }
                }
                return nil
            }
        }

        private static func describe(_ failure: Zlib.Failure) -> String {
            switch failure {
            case .streamTooShort(let produced, let expected):
                "the deflate stream ends after \(produced) of \(expected) bytes"
            case .streamTooLong(let expected):
                "the deflate stream holds more than the chunk's \(expected) bytes"
            case .truncatedStream:
                "the deflate stream is cut short"
            case .trailingData(let count):
                "\(count) bytes follow the deflate stream"
            case .corruptStream(let message):
                "invalid deflate data (\(message))"
            case .initializationFailed(let code), .unexpected(let code):
                "zlib failed with code \(code)"
            case .bufferTooLarge(let count):
                "a buffer of \(count) bytes exceeds zlib's limits"
            case .outputTooSmall:
                "zlib ran out of output space"
            }
        }
    }

    /// A validated header and chunk tables.
    private struct Layout: Sendable {
        struct Plane: Sendable {
            /// Where the payload starts in the encoding.
            let payloadOffset: Int
            /// For a deflated plane, the `chunkCount + 1` boundaries of its streams in the encoding.
            let streamOffsets: [Int]?
        }

        let logicalCount: Int
        let geometry: Geometry
        let planes: [Plane]

        init(parsing encoded: UnsafeRawBufferPointer) throws(BlobCodecError) {
            var reader = LittleEndianReader(bytes: encoded)
            let magicBytes = try (0..<4).map { (_) throws(BlobCodecError) in try reader.read(UInt8.self, "magic number") }
            guard magicBytes == ByteGroupedCodec.magic else { throw .notAnEncoding }
            let version = try reader.read(UInt8.self, "format version")
            guard version == ByteGroupedCodec.formatVersion else { throw .unsupportedVersion(version) }
            let width = Int(try reader.read(UInt8.self, "element width"))
            guard ByteGroupedCodec.isSupported(width: width) else {
                throw .corrupt("element width \(width) is not 1, 2, 4 or 8")
            }
            let declaredCount = try reader.read(UInt64.self, "logical byte count")
            guard let logicalCount = Int(exactly: declaredCount), logicalCount % width == 0 else {
                throw .corrupt("logical byte count \(declaredCount) is not a multiple of the element width \(width)")
            }
            let chunkLength = Int(try reader.read(UInt32.self, "chunk length"))
            guard chunkLength > 0 else { throw .corrupt("chunk length is zero") }
            let planeCount = Int(try reader.read(UInt8.self, "plane count"))
            guard planeCount == width else {
                throw .corrupt("\(planeCount) planes declared for element width \(width)")
            }
            var entries: [(method: Method, length: Int)] = []
            for plane in 0..<planeCount {
                let rawMethod = try reader.read(UInt8.self, "method of plane \(plane)")
                guard let method = Method(rawValue: rawMethod) else {
                    throw .corrupt("plane \(plane) has unknown method \(rawMethod)")
                }
                let declaredLength = try reader.read(UInt64.self, "payload length of plane \(plane)")
                guard let length = Int(exactly: declaredLength) else {
                    throw .corrupt("plane \(plane) declares an impossible payload length \(declaredLength)")
                }
                entries.append((method, length))
            }

            let geometry = Geometry(planeLength: logicalCount / width, width: width, chunkLength: chunkLength)
            var planes: [Plane] = []
            for (index, entry) in entries.enumerated() {
                let start = reader.offset
                guard entry.length <= encoded.count - start else {
                    throw .truncated(
                        "plane \(index) needs \(entry.length) bytes at offset \(start) but only \(encoded.count - start) remain"
                    )
                }
                switch entry.method {
                case .stored:
                    guard entry.length == geometry.planeLength else {
                        throw .corrupt("stored plane \(index) has \(entry.length) bytes instead of \(geometry.planeLength)")
                    }
                    planes.append(Plane(payloadOffset: start, streamOffsets: nil))
                case .deflate:
                    guard entry.length / ByteGroupedCodec.chunkEntrySize >= geometry.chunkCount else {
                        throw .corrupt("plane \(index) is too short for its table of \(geometry.chunkCount) chunks")
                    }
                    var offsets = [start + geometry.chunkCount * ByteGroupedCodec.chunkEntrySize]
                    offsets.reserveCapacity(geometry.chunkCount + 1)
                    let end = start + entry.length
                    for chunk in 0..<geometry.chunkCount {
                        let length = Int(try reader.read(UInt32.self, "length of plane \(index), chunk \(chunk)"))
                        let streamStart = offsets[chunk]
                        guard length <= end - streamStart else {
                            throw .corrupt("plane \(index), chunk \(chunk) overruns the plane's payload")
                        }
                        guard geometry.length(ofChunk: chunk) / ByteGroupedCodec.maximumExpansion <= length else {
                            throw .corrupt("plane \(index), chunk \(chunk) claims more than deflate can expand")
                        }
                        offsets.append(streamStart + length)
                    }
                    guard offsets.last == end else {
                        throw .corrupt("plane \(index)'s chunk lengths do not add up to its payload length")
                    }
                    planes.append(Plane(payloadOffset: start, streamOffsets: offsets))
                }
                reader.offset = start + entry.length
            }
            guard reader.offset == encoded.count else {
                throw .corrupt("\(encoded.count - reader.offset) bytes follow the last plane")
            }
            self.logicalCount = logicalCount
            self.geometry = geometry
            self.planes = planes
        }
    }
}
