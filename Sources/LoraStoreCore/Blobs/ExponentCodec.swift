import Foundation

/// Compresses F32, F16 and BF16 tensors: each element's exponent and top mantissa bits are entropy-coded with
/// tANS, its sign and low mantissa bits are stored as they are.
///
/// This is ZipNN's idea (an exponent byte entropy-coded, sign and mantissa stored) with two changes that matter
/// on weights. tANS codes in fractions of a bit where Huffman rounds to whole bits, which costs Huffman about
/// 2 % over the exponent's entropy when one exponent value covers a third of the elements. And the symbol
/// takes the top mantissa bits along (see ``FloatLayout``): within one binade a bell curve is far from flat, so
/// those bits are partly predictable from the exponent. On N(0, 0.02) weights the encoding is within 0.2 % of
/// the order-0 entropy of the whole elements.
///
/// ``ByteGroupedCodec`` (`bgzip`) keeps every byte plane and inflates with zlib; this codec compresses better
/// and decodes several times faster (one table lookup per element, 64 independent tANS lanes, sixteen at a
/// time with AVX-512, eight with AVX2; see ``LaneDecoder`` and BENCHMARKS.md), so it is the store's codec for
/// floating-point tensors.
///
/// The elements are cut into chunks of `C` elements (131 072 by default) that are coded with one shared table
/// and decoded independently, concurrently when more than one core is available; the encoding is byte-identical
/// whatever the number of threads. Every length and bound is validated before use, each chunk's stream must be
/// consumed exactly and end in the encoder's initial states; `verify --deep` checks the digest of what it decodes
/// (the stored sign and low mantissa bits have no check of their own).
///
/// ## Format, version 2
///
/// All integers are little-endian; `W` is the element width of the layout and `n = N / W`.
///
/// | offset | size  | field                                                                           |
/// |-------:|------:|---------------------------------------------------------------------------------|
/// |      0 |     4 | magic `"LSXA"`                                                                  |
/// |      4 |     1 | format version, `2` (or `1`, which this build still reads)                      |
/// |      5 |     1 | layout: 1 BF16, 2 F16, 3 F32 (``FloatLayout``)                                  |
/// |      6 |     8 | logical byte count `N` (u64), a multiple of `W`                                 |
/// |     14 |     4 | chunk length `C` in elements (u32, a positive multiple of 32)                   |
/// |     18 |     2 | code entry count `E` (u16): 0 when `n` is 0, else 1 to 4096                     |
/// |     20 |  4·E  | per entry, by increasing value: value (u16, bit 15 set when escaped), states (u16) |
///
/// Then come the residue planes of all `n` elements (``FloatLayout/residueSize(_:)`` bytes: the u8 or u16
/// plane, then the nibble plane in blocks of 32 elements), a chunk table of `⌈n / C⌉` u32 stream lengths, and the
/// chunk streams (``ANSLanes``) in chunk order, which end the encoding. The entries' state counts add up to
/// 4096; an escaped entry's low ``FloatLayout/mantissaBits`` bits are zero and stand for all values below the
/// next multiple of `2^mantissaBits`.
///
/// Version 1 differs only in its chunk streams: one bit stream of eight interleaved states per chunk
/// (``ANSStreams``), whose shared bit reader held it to 0.6–1.2 GB/s of BF16 per core on the machine of
/// BENCHMARKS.md, where version 2 decodes 1.7–1.9 GB/s with AVX2 and 2.7–2.8 with AVX-512.
public enum ExponentCodec {
    /// Encodes `bytes`, little-endian elements of `layout`, or returns `nil` when that does not save space (the
    /// caller then stores the bytes raw) or `bytes.count` is not a multiple of the element width.
    public static func encode(_ bytes: UnsafeRawBufferPointer, layout: FloatLayout) -> [UInt8]? {
        guard let encoded = encode(bytes, layout: layout, configuration: .default), encoded.count < bytes.count
        else { return nil }
        return encoded
    }

    /// Whether `bytes` start with this codec's magic number (which ``ByteGroupedCodec`` encodings do not).
    public static func isEncoding(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= magic.count && zip(bytes, magic).allSatisfy { $0 == $1 }
    }

    /// The number of logical bytes `encoded` decodes to, after validating its header, code and chunk table.
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

extension ExponentCodec {
    /// Encoder settings; the public API uses ``default``. Tests and measurements vary them.
    package struct Configuration: Sendable {
        /// Elements per independently decodable chunk: a multiple of 32 (the residue's block length) that fits
        /// in 32 bits.
        package var chunkLength: Int
        /// The largest number of threads used; it never changes the encoding.
        package var maximumConcurrency: Int

        package init(chunkLength: Int, maximumConcurrency: Int) {
            self.chunkLength = chunkLength
            self.maximumConcurrency = maximumConcurrency
        }

        /// 128 Ki elements: a chunk's symbols and output (0.5 to 0.75 MiB) stay in L2 between the two
        /// decoding passes, and a chunk's fixed cost (its lanes' initial states and the rest of their last
        /// words, about 160 bytes) stays near 0.1 % of an F16 tensor's encoding.
        package static let `default` = Configuration(
            chunkLength: 1 << 17,
            maximumConcurrency: ProcessInfo.processInfo.activeProcessorCount
        )
    }
}

// MARK: - Encoding

extension ExponentCodec {
    private static let magic: [UInt8] = Array("LSXA".utf8)
    /// The version this build writes; it reads versions 1 and 2.
    private static let formatVersion: UInt8 = 2
    private static let fixedHeaderSize = 20
    private static let entrySize = 4
    private static let chunkEntrySize = 4
    private static let escapedFlag = 0x8000

    /// ``encode(_:layout:)`` with explicit settings, returning the encoding even when it is not smaller.
    package static func encode(
        _ bytes: UnsafeRawBufferPointer, layout: FloatLayout, configuration: Configuration
    ) -> [UInt8]? {
        let chunkLength = configuration.chunkLength
        guard bytes.count % layout.width == 0, chunkLength > 0, chunkLength % FloatLayout.blockLength == 0,
              UInt32(exactly: chunkLength) != nil
        else { return nil }
        let count = bytes.count / layout.width
        let chunkCount = (count + chunkLength - 1) / chunkLength
        let workerCount = min(max(configuration.maximumConcurrency, 1), chunkCount)
        let residueSize = layout.residueSize(count)
        let symbols = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: max(count, 1))
        defer { symbols.deallocate() }
        let residue = UnsafeMutableRawBufferPointer.allocate(byteCount: max(residueSize, 1), alignment: 64)
        defer { residue.deallocate() }

        let histogram = split(
            bytes, layout: layout, count: count, chunkLength: chunkLength, workerCount: workerCount,
            symbols: symbols, residue: residue
        )
        var entries: [ANSCode.Entry] = []
        var streams: [[UInt8]] = []
        if let code = ANSCode.fitting(
            histogram: histogram, symbolBits: layout.symbolBits, escapableBits: layout.mantissaBits
        ) {
            entries = code.entries
            streams = encodeChunks(
                symbols, count: count, chunkLength: chunkLength, workerCount: workerCount,
                tables: code.encodingTables()
            )
        }

        var encoded = magic + [formatVersion, layout.rawValue]
        encoded.reserveCapacity(
            fixedHeaderSize + entries.count * entrySize + residueSize + chunkCount * chunkEntrySize
                + streams.reduce(0) { $0 + $1.count }
        )
        func append<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { encoded.append(contentsOf: $0) }
        }
        append(UInt64(bytes.count))
        append(UInt32(chunkLength))
        append(UInt16(entries.count))
        for entry in entries {
            append(UInt16(entry.value | (entry.escapeBits > 0 ? escapedFlag : 0)))
            append(UInt16(entry.count))
        }
        encoded.append(contentsOf: UnsafeRawBufferPointer(rebasing: residue[..<residueSize]))
        for stream in streams { append(UInt32(stream.count)) }
        for stream in streams { encoded.append(contentsOf: stream) }
        return encoded
    }

    /// Splits every chunk into symbols and residue, concurrently, and returns the symbols' histogram.
    private static func split(
        _ bytes: UnsafeRawBufferPointer, layout: FloatLayout, count: Int, chunkLength: Int, workerCount: Int,
        symbols: UnsafeMutableBufferPointer<UInt16>, residue: UnsafeMutableRawBufferPointer
    ) -> [Int] {
        let histogramSize = 1 << layout.symbolBits
        let plan = SplitPlan(
            input: bytes, symbols: symbols, residue: residue, layout: layout, count: count, chunkLength: chunkLength)
        let histograms = ChunkWorkers.run(workerCount: workerCount) { worker in
            var histogram = [Int](repeating: 0, count: histogramSize)
            histogram.withUnsafeMutableBufferPointer { plan.split(worker: worker, workerCount: workerCount, counting: $0) }
            return histogram
        }
        var total = [Int](repeating: 0, count: histogramSize)
        for histogram in histograms {
            for (value, occurrences) in histogram.enumerated() { total[value] += occurrences }
        }
        return total
    }

    /// Codes every chunk's symbols, concurrently, and returns the streams in chunk order.
    private static func encodeChunks(
        _ symbols: UnsafeMutableBufferPointer<UInt16>, count: Int, chunkLength: Int, workerCount: Int,
        tables: ANSEncodingTables
    ) -> [[UInt8]] {
        let source = SymbolSource(symbols: UnsafeBufferPointer(symbols))
        let chunkCount = (count + chunkLength - 1) / chunkLength
        let perWorker = ChunkWorkers.run(workerCount: workerCount) { worker in
            let output = UnsafeMutableRawBufferPointer.allocate(byteCount: ANSLanes.bound(chunkLength), alignment: 64)
            defer { output.deallocate() }
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: ANSLanes.scratchSize(chunkLength), alignment: 64)
            defer { scratch.deallocate() }
            var streams: [[UInt8]] = []
            for chunk in stride(from: worker, to: chunkCount, by: workerCount) {
                let first = chunk * chunkLength
                let length = ANSLanes.encode(
                    source.symbols.baseAddress.unsafelyUnwrapped + first, count: min(chunkLength, count - first),
                    tables: tables, scratch: scratch, into: output.baseAddress.unsafelyUnwrapped
                )
                streams.append(Array(UnsafeRawBufferPointer(rebasing: output[..<length])))
            }
            return streams
        }
        return (0..<chunkCount).map { perWorker[$0 % workerCount][$0 / workerCount] }
    }

    /// The symbols of one encoding, read by the worker threads.
    private struct SymbolSource: @unchecked Sendable {
        let symbols: UnsafeBufferPointer<UInt16>
    }

    /// The buffers of one split, shared by the worker threads.
    private struct SplitPlan: @unchecked Sendable {
        let input: UnsafeRawBufferPointer
        let symbols: UnsafeMutableBufferPointer<UInt16>
        let residue: UnsafeMutableRawBufferPointer
        let layout: FloatLayout
        let count: Int
        let chunkLength: Int

        /// Splits this worker's chunks and adds their symbols to `histogram`.
        func split(worker: Int, workerCount: Int, counting histogram: UnsafeMutableBufferPointer<Int>) {
            let planes = FloatLayout.Residue(
                layout: layout, base: residue.baseAddress.unsafelyUnwrapped, count: count)
            for first in stride(from: worker * chunkLength, to: count, by: workerCount * chunkLength) {
                let length = min(chunkLength, count - first)
                let chunkSymbols = symbols.baseAddress.unsafelyUnwrapped + first
                layout.split(
                    input.baseAddress.unsafelyUnwrapped, first: first, count: length, symbols: chunkSymbols,
                    residue: planes
                )
                for index in 0..<length { histogram[Int(chunkSymbols[index])] &+= 1 }
            }
        }
    }
}

// MARK: - Decoding

extension ExponentCodec {
    /// ``decode(_:into:)`` with an explicit thread limit and lane decoder (tests and benchmarks compare them).
    package static func decode(
        _ encoded: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer,
        maximumConcurrency: Int,
        decoder: LaneDecoder = .preferred
    ) throws(BlobCodecError) {
        let layout = try Layout(parsing: encoded)
        guard output.count == layout.logicalCount else {
            throw .outputSizeMismatch(expected: layout.logicalCount, actual: output.count)
        }
        let chunkCount = layout.chunks.count
        let workerCount = min(max(maximumConcurrency, 1), chunkCount)
        guard workerCount > 0 else { return }
        let tables = DecodingTables(code: layout.code, version: layout.version)
        let failures = tables.streams.withUnsafeBufferPointer { streamTable in
            tables.lanes.withUnsafeBufferPointer { laneTable in
                let plan = DecodePlan(
                    input: encoded, output: output, layout: layout, streamTable: streamTable, laneTable: laneTable,
                    decoder: decoder)
                return ChunkWorkers.run(workerCount: workerCount) { worker in
                    plan.decodeChunks(worker: worker, workerCount: workerCount)
                }
            }
        }
        if let failure = failures.compactMap({ $0 }).min(by: { $0.chunk < $1.chunk }) {
            throw failure.error
        }
    }

    /// The decoding table of the encoding's version (the other one stays empty).
    private struct DecodingTables {
        var streams: [ANSDecodingEntry] = []
        var lanes: [UInt32] = []

        init(code: ANSCode, version: UInt8) {
            if version == 1 { streams = code.decodingTable() } else { lanes = code.laneDecodingTable() }
        }
    }

    /// The buffers of one decoding, shared by the worker threads.
    private struct DecodePlan: @unchecked Sendable {
        let input: UnsafeRawBufferPointer
        let output: UnsafeMutableRawBufferPointer
        let layout: Layout
        let streamTable: UnsafeBufferPointer<ANSDecodingEntry>
        let laneTable: UnsafeBufferPointer<UInt32>
        let decoder: LaneDecoder

        /// Decodes this worker's chunks; returns the first failure, if any.
        func decodeChunks(worker: Int, workerCount: Int) -> (chunk: Int, error: BlobCodecError)? {
            let format = layout.format
            let chunkLength = layout.chunkLength
            // A chunk holds at most the tensor's elements, whatever chunk length a damaged header claims.
            let symbols = UnsafeMutablePointer<UInt16>.allocate(capacity: min(chunkLength, layout.elementCount))
            defer { symbols.deallocate() }
            let residue = FloatLayout.Residue(
                layout: format, base: UnsafeMutableRawPointer(mutating: input.baseAddress.unsafelyUnwrapped)
                    + layout.residueOffset,
                count: layout.elementCount
            )
            for chunk in stride(from: worker, to: layout.chunks.count, by: workerCount) {
                let first = chunk * chunkLength
                let count = min(chunkLength, layout.elementCount - first)
                let stream = UnsafeRawBufferPointer(rebasing: input[layout.chunks[chunk]])
                if let problem = decodeSymbols(stream, count: count, into: symbols) {
                    return (chunk, .corrupt("chunk \(chunk): \(problem)"))
                }
                format.merge(
                    symbols: symbols, residue: residue, first: first, count: count,
                    into: output.baseAddress.unsafelyUnwrapped + first * format.width
                )
            }
            return nil
        }

        /// Decodes one chunk's symbols; returns what is wrong with the chunk, if anything.
        private func decodeSymbols(
            _ stream: UnsafeRawBufferPointer, count: Int, into symbols: UnsafeMutablePointer<UInt16>
        ) -> String? {
            if layout.version == 1 {
                do throws(ANSStreams.Failure) {
                    try ANSStreams.decode(stream, count: count, table: streamTable.baseAddress.unsafelyUnwrapped, into: symbols)
                } catch {
                    return error.description
                }
                return nil
            }
            do throws(ANSLanes.Failure) {
                try ANSLanes.decode(
                    stream, count: count, table: laneTable.baseAddress.unsafelyUnwrapped, into: symbols,
                    decoder: decoder)
            } catch {
                return error.description
            }
            return nil
        }
    }

    /// A validated header, code and chunk table.
    private struct Layout: Sendable {
        let version: UInt8
        let format: FloatLayout
        let logicalCount: Int
        let elementCount: Int
        let chunkLength: Int
        let code: ANSCode
        let residueOffset: Int
        /// Where each chunk's stream lies in the encoding.
        let chunks: [Range<Int>]

        init(parsing encoded: UnsafeRawBufferPointer) throws(BlobCodecError) {
            var reader = LittleEndianReader(bytes: encoded)
            let magicBytes = try (0..<4).map { (_) throws(BlobCodecError) in try reader.read(UInt8.self, "magic number") }
            guard magicBytes == ExponentCodec.magic else { throw .notAnEncoding }
            let version = try reader.read(UInt8.self, "format version")
            guard version == 1 || version == ExponentCodec.formatVersion else { throw .unsupportedVersion(version) }
            let rawLayout = try reader.read(UInt8.self, "layout")
            guard let format = FloatLayout(rawValue: rawLayout) else { throw .corrupt("unknown layout \(rawLayout)") }
            let declaredCount = try reader.read(UInt64.self, "logical byte count")
            guard let logicalCount = Int(exactly: declaredCount), logicalCount % format.width == 0 else {
                throw .corrupt("logical byte count \(declaredCount) is not a multiple of the element width \(format.width)")
            }
            let elementCount = logicalCount / format.width
            // Every element keeps at least half a byte of residue, so a short encoding cannot claim a huge size.
            guard elementCount / 2 <= encoded.count else {
                throw .truncated("\(elementCount) elements need more residue than the \(encoded.count) bytes hold")
            }
            let chunkLength = Int(try reader.read(UInt32.self, "chunk length"))
            guard chunkLength > 0, chunkLength % FloatLayout.blockLength == 0 else {
                throw .corrupt("chunk length \(chunkLength) is not a positive multiple of \(FloatLayout.blockLength)")
            }
            let entryCount = Int(try reader.read(UInt16.self, "code entry count"))
            guard (elementCount == 0) == (entryCount == 0), entryCount <= 1 << format.symbolBits else {
                throw .corrupt("\(entryCount) code entries for \(elementCount) elements")
            }

            var entries: [ANSCode.Entry] = []
            var nextValue = 0
            var stateTotal = 0
            for index in 0..<entryCount {
                let field = Int(try reader.read(UInt16.self, "value of code entry \(index)"))
                let states = Int(try reader.read(UInt16.self, "state count of code entry \(index)"))
                let escapeBits = field & ExponentCodec.escapedFlag != 0 ? format.mantissaBits : 0
                let value = field & ~ExponentCodec.escapedFlag
                guard value >= nextValue, value < 1 << format.symbolBits, value % (1 << escapeBits) == 0 else {
                    throw .corrupt("code entry \(index) has an invalid or out-of-order value \(value)")
                }
                guard states > 0 else { throw .corrupt("code entry \(index) has no states") }
                nextValue = value + (1 << escapeBits)
                stateTotal += states
                entries.append(ANSCode.Entry(value: value, escapeBits: escapeBits, count: states))
            }
            guard entryCount == 0 || stateTotal == ANSCode.tableSize else {
                throw .corrupt("the code's state counts add up to \(stateTotal) instead of \(ANSCode.tableSize)")
            }

            let residueOffset = reader.offset
            let residueSize = format.residueSize(elementCount)
            guard residueSize <= encoded.count - residueOffset else {
                throw .truncated(
                    "the residue needs \(residueSize) bytes at offset \(residueOffset) but only \(encoded.count - residueOffset) remain"
                )
            }
            reader.offset += residueSize
            let chunkCount = elementCount / chunkLength + (elementCount % chunkLength == 0 ? 0 : 1)
            guard chunkCount <= (encoded.count - reader.offset) / ExponentCodec.chunkEntrySize else {
                throw .truncated("the table of \(chunkCount) chunks is cut short")
            }
            var start = reader.offset + chunkCount * ExponentCodec.chunkEntrySize
            var chunks: [Range<Int>] = []
            chunks.reserveCapacity(chunkCount)
            for chunk in 0..<chunkCount {
                let length = Int(try reader.read(UInt32.self, "stream length of chunk \(chunk)"))
                guard length <= encoded.count - start else {
                    throw .truncated("chunk \(chunk)'s stream of \(length) bytes runs past the end")
                }
                chunks.append(start..<start + length)
                start += length
            }
            guard start == encoded.count else {
                throw .corrupt("\(encoded.count - start) bytes follow the last chunk's stream")
            }
            self.version = version
            self.format = format
            self.logicalCount = logicalCount
            self.elementCount = elementCount
            self.chunkLength = chunkLength
            self.code = ANSCode(entries: entries, symbolBits: format.symbolBits)
            self.residueOffset = residueOffset
            self.chunks = chunks
        }
    }
}
