import CZlib
import Foundation
import LoraStoreCore

/// `ExponentCodec` (the store's codec for F32, F16 and BF16) and the older `ByteGroupedCodec` against plain zlib
/// and ZipNN on generated weights.
enum CodecBenchmarks {
    static let dtypes: [DType] = [.bf16, .f16, .f32]
    /// `ByteGroupedCodec.encode`'s default minimum gain per plane, as the store uses it.
    static let defaultMinimumGain = 0.03

    /// The tensor every codec compresses for `dtype`: `size` bytes of N(0, 0.02) weights.
    static func sample(_ dtype: DType, size: Int) throws -> UnsafeMutableRawBufferPointer {
        let width = dtype.byteWidth ?? 1
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size / width * width, alignment: 64)
        try SyntheticRandom.fill(
            buffer, dtype: dtype, distribution: .normal(mean: 0, standardDeviation: 0.02),
            seed: SyntheticRandom.derive(42, "codec-\(dtype.rawValue)"))
        return buffer
    }

    static func sampleName(_ dtype: DType) -> String {
        "\(dtype.rawValue.lowercased()).bin"
    }

    /// Writes the samples as raw little-endian files for zipnn_bench.py.
    static func dumpSamples(to folder: URL, options: BenchmarkOptions) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for dtype in dtypes {
            let buffer = try sample(dtype, size: options.codecSize)
            defer { buffer.deallocate() }
            let file = try WritableFile(creating: folder.appending(path: sampleName(dtype)).path)
            try file.write(UnsafeRawBufferPointer(buffer))
            try file.close()
            print("wrote \(folder.appending(path: sampleName(dtype)).path) (\(Format.bytes(buffer.count)))")
        }
    }

    static func run(options: BenchmarkOptions, references: ReferenceBandwidths, report: inout BenchmarkReport) throws {
        let zipNN = try options.zipNNResults.map(ZipNNResults.load)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        report.begin(
            "Codec: exponent tANS and byte-grouped zlib vs plain zlib and ZipNN",
            method: [
                "Each tensor is \(Format.bytes(options.codecSize)) of N(0, 0.02) weights generated in F32 and rounded to the "
                    + "type (the same bytes are dumped for the ZipNN script). *ratio* = compressed / raw (smaller is better). "
                    + "Speeds are logical (uncompressed) bytes per second of wall-clock time, best of \(options.repetitions), "
                    + "each decode into a newly allocated buffer (as a blob read and ZipNN do); in brackets, the fraction "
                    + "of the read-and-rewrite bandwidth on the same number of threads.",
                "- *lorastore xans*: `ExponentCodec`, the store's codec for these types (exponent and top mantissa bits "
                    + "tANS-coded in 64 lanes, sign and low mantissa bits stored, 128 Ki-element chunks), on 1 thread and on "
                    + "\(cores), decoded with this CPU's fastest lane decoder (`\(LaneDecoder.preferred)`); the rows "
                    + "*xans, avx2 / portable decoder* decode the same encoding with the decoders other CPUs run "
                    + "(AVX2 on x86_64 without AVX-512 VBMI2, portable Swift elsewhere).",
                "- *lorastore bgzip*: `ByteGroupedCodec`, the previous codec, still read (byte planes, raw deflate, "
                    + "Huffman only, level 1, 1 MiB chunks), on 1 thread and on \(cores).",
                "- *zlib -6*, *zlib -1*: `compress2`/`uncompress` of the raw bytes (zlib format), 1 thread.",
                "- *ZipNN*: `zipnn` from PyPI via scripts/zipnn_bench.py on the same bytes, `threads=1` "
                    + "(\(zipNN?.settings ?? "not run")).",
            ],
            columns: ["type", "codec", "threads", "ratio", "compress", "decompress"])
        if let zipNN, zipNN.status != "ok" {
            report.note("ZipNN skipped: \(zipNN.reason ?? "no reason given")")
        }
        for dtype in dtypes {
            let buffer = try sample(dtype, size: options.codecSize)
            defer { buffer.deallocate() }
            let input = UnsafeRawBufferPointer(buffer)
            let width = dtype.byteWidth ?? 1
            guard let layout = FloatLayout(dtype) else { continue }
            var ours: (ratio: Double, decompress: Double)?
            // This CPU's decoder on 1 thread and on all cores, then every other decoder it runs on 1 thread.
            let xansRuns = [(1, LaneDecoder.preferred), (cores, .preferred)]
                + LaneDecoder.allCases.filter { $0 != .preferred && $0.isAvailable }.map { (1, $0) }
            for (threads, decoder) in xansRuns {
                let result = try measure(input, repetitions: options.repetitions, dtype: dtype, codec: "xans") {
                    ExponentCodec.encode(
                        input, layout: layout,
                        configuration: ExponentCodec.Configuration(
                            chunkLength: ExponentCodec.Configuration.default.chunkLength, maximumConcurrency: threads))
                } decode: { encoded, output in
                    try ExponentCodec.decode(encoded, into: output, maximumConcurrency: threads, decoder: decoder)
                }
                if threads == 1 && decoder == .preferred { ours = (result.ratio, Double(buffer.count) / result.decompress) }
                let name = decoder == .preferred ? "lorastore xans" : "lorastore xans, \(decoder) decoder"
                report.row(row(dtype, name, threads, result, size: buffer.count, references: references))
            }
            for threads in [1, cores] {
                var configuration = ByteGroupedCodec.Configuration.default
                configuration.maximumConcurrency = threads
                let result = try measure(input, repetitions: options.repetitions, dtype: dtype, codec: "bgzip") {
                    ByteGroupedCodec.encode(
                        input, elementWidth: width, minimumGain: defaultMinimumGain, configuration: configuration)
                } decode: { encoded, output in
                    try ByteGroupedCodec.decode(encoded, into: output, maximumConcurrency: threads)
                }
                report.row(row(dtype, "lorastore bgzip", threads, result, size: buffer.count, references: references))
            }
            for level: Int32 in [6, 1] {
                let (ratio, compress, decompress) = try zlib(input, level: level, repetitions: options.repetitions, dtype: dtype)
                report.row([
                    dtype.rawValue, "zlib -\(level)", "1", Format.ratio(ratio),
                    Format.rate(Double(buffer.count) / compress, of: references.readRewriteSingle),
                    Format.rate(Double(buffer.count) / decompress, of: references.readRewriteSingle),
                ])
            }
            if let entry = zipNN?.entry(for: dtype.rawValue) {
                report.row([
                    dtype.rawValue, "ZipNN \(zipNN?.version ?? "")", "1", Format.ratio(entry.ratio),
                    Format.rate(entry.compressBytesPerSecond, of: references.readRewriteSingle),
                    Format.rate(entry.decompressBytesPerSecond, of: references.readRewriteSingle),
                ])
                if let ours {
                    let ratioMet = ours.ratio <= entry.ratio
                    let speedMet = ours.decompress >= entry.decompressBytesPerSecond
                    report.note(
                        "\(dtype.rawValue), 1 thread: lorastore xans ratio \(Format.ratio(ours.ratio)) vs ZipNN \(Format.ratio(entry.ratio)) "
                            + "(target ≤ ZipNN: \(ratioMet ? "met" : "not met")); decompression "
                            + "\(Format.rate(ours.decompress)) vs \(Format.rate(entry.decompressBytesPerSecond)) = "
                            + "\(Format.ratio(ours.decompress / entry.decompressBytesPerSecond))× "
                            + "(target ≥ ZipNN: \(speedMet ? "met" : "not met")).")
                }
            }
        }
    }

    /// Ratio and best compress and decompress times of one of lorastore's codecs, after checking the round trip.
    private static func measure(
        _ input: UnsafeRawBufferPointer, repetitions: Int, dtype: DType, codec: String,
        encode: () -> [UInt8]?,
        decode: (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) throws -> Void
    ) throws -> (ratio: Double, compress: Double, decompress: Double) {
        var encoded: [UInt8]?
        let compress = Timing.best(repetitions) { encoded = encode() }
        guard let encoded else { throw RoundTripFailure(codec: "lorastore \(codec) (nothing gained)", dtype: dtype) }
        // Each decode writes into fresh memory, as a blob read does (and as ZipNN's does), page faults included.
        var decoded: [UInt8] = []
        let decompress = try encoded.withUnsafeBytes { encodedBytes in
            try Timing.best(repetitions) {
                decoded = try [UInt8](unsafeUninitializedCapacity: input.count) { buffer, initialized in
                    try decode(encodedBytes, UnsafeMutableRawBufferPointer(buffer))
                    initialized = input.count
                }
            }
        }
        guard decoded.withUnsafeBytes({ equal($0, input) }) else {
            throw RoundTripFailure(codec: "lorastore \(codec)", dtype: dtype)
        }
        return (Double(encoded.count) / Double(input.count), compress, decompress)
    }

    /// A report row for one of lorastore's codecs.
    private static func row(
        _ dtype: DType, _ codec: String, _ threads: Int, _ result: (ratio: Double, compress: Double, decompress: Double),
        size: Int, references: ReferenceBandwidths
    ) -> [String] {
        let reference = threads == 1 ? references.readRewriteSingle : references.readRewrite
        return [
            dtype.rawValue, codec, "\(threads)", Format.ratio(result.ratio),
            Format.rate(Double(size) / result.compress, of: reference),
            Format.rate(Double(size) / result.decompress, of: reference),
        ]
    }

    /// Ratio and best compress and decompress times of one-shot zlib at `level`.
    private static func zlib(
        _ input: UnsafeRawBufferPointer, level: Int32, repetitions: Int, dtype: DType
    ) throws -> (ratio: Double, compress: Double, decompress: Double) {
        let bound = Int(compressBound(uLong(input.count)))
        let compressed = UnsafeMutableRawBufferPointer.allocate(byteCount: bound, alignment: 64)
        defer { compressed.deallocate() }
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: input.count, alignment: 64)
        defer { output.deallocate() }
        let source = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
        var length = uLong(bound)
        var status = Z_OK
        let compress = Timing.best(repetitions, budget: 10) {
            length = uLong(bound)
            status = compress2(compressed.baseAddress!.assumingMemoryBound(to: Bytef.self), &length, source, uLong(input.count), level)
        }
        guard status == Z_OK else { throw RoundTripFailure(codec: "zlib -\(level)", dtype: dtype) }
        let decompress = Timing.best(repetitions, budget: 10) {
            var produced = uLong(input.count)
            status = uncompress(
                output.baseAddress!.assumingMemoryBound(to: Bytef.self), &produced,
                compressed.baseAddress!.assumingMemoryBound(to: Bytef.self), length)
        }
        guard status == Z_OK, equal(UnsafeRawBufferPointer(output), input) else {
            throw RoundTripFailure(codec: "zlib -\(level)", dtype: dtype)
        }
        return (Double(length) / Double(input.count), compress, decompress)
    }

    private static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count, let first = a.baseAddress, let second = b.baseAddress else { return a.count == b.count }
        return memcmp(first, second, a.count) == 0
    }

    /// A codec did not give back its input.
    struct RoundTripFailure: Error, CustomStringConvertible {
        let codec: String
        let dtype: DType

        var description: String { "\(codec) did not round-trip the \(dtype.rawValue) sample" }
    }
}
