import CZlib
import Foundation
import LoraStoreCore

/// `ExponentCodec` (the store's codec for F32, F16 and BF16) and the older `ByteGroupedCodec` against plain zlib
/// and ZipNN, on generated weights and on any real ones the machine has.
enum CodecBenchmarks {
    static let dtypes: [DType] = [.bf16, .f16, .f32]
    /// `ByteGroupedCodec.encode`'s default minimum gain per plane, as the store uses it.
    static let defaultMinimumGain = 0.03

    static func run(
        options: BenchmarkOptions, references: ReferenceBandwidths, workspace: Workspace, report: inout BenchmarkReport
    ) throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var zipNN: ZipNNProcess?
        var zipNNSkipped: String?
        switch options.zipNN {
        case .off: break
        case .skipped(let reason): zipNNSkipped = reason
        case .run(let python):
            do {
                zipNN = try ZipNNProcess(python: python, log: workspace.root.appending(path: "zipnn.log"))
            } catch {
                zipNNSkipped = "\(error)"
            }
        }
        defer { zipNN?.close() }
        let locations = options.realWeights ?? RealWeights.defaultLocations()
        let realFiles = RealWeights.files(under: locations)
        var samples = try dtypes.map { try CodecSample.generated($0, size: options.codecSize) }
        defer { samples.forEach { $0.deallocate() } }
        var unreadable: [String] = []
        for file in realFiles.prefix(RealWeights.maximumFiles) {
            do {
                samples += try RealWeights.samples(from: file, size: options.codecSize)
            } catch {
                unreadable.append("\(file.path): \(error)")
            }
        }
        report.begin(
            "Codec: exponent tANS and byte-grouped zlib vs plain zlib and ZipNN",
            method: method(options: options, cores: cores, zipNN: zipNN, samples: samples),
            columns: ["tensor", "codec", "threads", "ratio", "compress", "decompress"])
        if let zipNNSkipped {
            report.note("ZipNN skipped: \(zipNNSkipped)")
        }
        let searched = locations.map(\.path).joined(separator: ", ")
        if realFiles.isEmpty {
            report.note("Real weights: no safetensors files under \(searched); only generated tensors were measured.")
        } else if realFiles.count > RealWeights.maximumFiles {
            report.note(
                "Real weights: \(realFiles.count) safetensors files under \(searched); the first "
                    + "\(RealWeights.maximumFiles) in path order were sampled.")
        }
        for problem in unreadable {
            report.note("Real weights: skipped \(problem)")
        }
        for sample in samples {
            do {
                try measure(
                    sample, options: options, cores: cores, references: references, zipNN: zipNN, workspace: workspace,
                    report: &report)
            } catch let failure as ZipNNProcess.Failure {
                // ZipNN stops being compared; lorastore's rows are measured again without it.
                report.note("ZipNN failed on \(sample.label), so it is left out from there on: \(failure)")
                zipNN?.close()
                zipNN = nil
                try measure(
                    sample, options: options, cores: cores, references: references, zipNN: nil, workspace: workspace,
                    report: &report)
            }
        }
    }

    /// The section's method text.
    private static func method(options: BenchmarkOptions, cores: Int, zipNN: ZipNNProcess?, samples: [CodecSample]) -> [String] {
        var method = [
            "Each generated tensor is \(Format.bytes(options.codecSize)) of N(0, 0.02) weights generated in F32 and rounded "
                + "to the type; tensors named after a file are its weight matrices (two or more dimensions, names ending "
                + "in `weight`) of that type, concatenated in file order up to the same size. *ratio* = compressed / raw "
                + "(smaller is better). Speeds are logical (uncompressed) bytes per second of wall-clock time, best of "
                + "\(options.repetitions), each decode into newly allocated memory, allocated as a blob read allocates it (an anonymous mapping advised for transparent huge pages, for a blob of 2 MiB or more; ZipNN decodes into memory from `malloc`); in "
                + "brackets, the fraction of the read-and-rewrite bandwidth on the same number of threads.",
            "- *lorastore xans*: `ExponentCodec`, the store's codec for these types (exponent and top mantissa bits "
                + "tANS-coded in 64 lanes, sign and low mantissa bits stored, 128 Ki-element chunks), on 1 thread and on "
                + "\(cores), decoded with this CPU's fastest lane decoder (`\(LaneDecoder.preferred)`); the rows "
                + "*xans, avx2 / portable decoder* decode the same encoding with the decoders other CPUs run "
                + "(AVX2 on x86_64 without AVX-512 VBMI2, portable Swift elsewhere).",
            "- *lorastore bgzip*: `ByteGroupedCodec`, the previous codec, still read (byte planes, raw deflate, "
                + "Huffman only, level 1, 1 MiB chunks), on 1 thread and on \(cores).",
            "- *zlib -6*, *zlib -1*: `compress2`/`uncompress` of the raw bytes (zlib format), 1 thread.",
            "- *ZipNN*: `zipnn` from PyPI (\(zipNN.map { "\($0.version), \($0.settings)" } ?? "not run")) on the same "
                + "bytes, written to a file for scripts/zipnn_bench.py. That script runs beside the benchmark, and each "
                + "of its rounds (one compression, one decompression) comes right before a round of lorastore xans on "
                + "1 thread, the row the targets compare: both are timed over the same minutes of a machine whose "
                + "speed drifts. Its time is measured in Python around the library calls only.",
        ]
        let real = samples.filter { $0.label != $0.dtype.rawValue }
        if !real.isEmpty {
            method.append("- Real weights: " + real.map { "*\($0.label)*: \($0.origin)" }.joined(separator: "; ") + ".")
        }
        return method
    }

    /// Every codec on one sample, and the targets against ZipNN.
    private static func measure(
        _ sample: CodecSample, options: BenchmarkOptions, cores: Int, references: ReferenceBandwidths,
        zipNN: ZipNNProcess?, workspace: Workspace, report: inout BenchmarkReport
    ) throws {
        let dtype = sample.dtype
        let input = UnsafeRawBufferPointer(sample.bytes)
        let width = dtype.byteWidth ?? 1
        guard let layout = FloatLayout(dtype) else { return }
        let sampleFile = workspace.fresh("codec-sample.bin")
        defer { try? FileManager.default.removeItem(at: sampleFile) }
        if zipNN != nil { try sample.write(to: sampleFile) }
        var zipNNRounds: [ZipNNProcess.Round] = []
        var ours: (ratio: Double, decompress: Double)?
        // This CPU's decoder on 1 thread and on all cores, then every other decoder it runs on 1 thread.
        let xansRuns = [(1, LaneDecoder.preferred), (cores, .preferred)]
            + LaneDecoder.allCases.filter { $0 != .preferred && $0.isAvailable }.map { (1, $0) }
        for (threads, decoder) in xansRuns {
            let comparedWithZipNN = threads == 1 && decoder == .preferred
            let result = try measure(input, repetitions: options.repetitions, dtype: dtype, codec: "xans") {
                ExponentCodec.encode(
                    input, layout: layout,
                    configuration: ExponentCodec.Configuration(
                        chunkLength: ExponentCodec.Configuration.default.chunkLength, maximumConcurrency: threads))
            } decode: { encoded, output in
                try ExponentCodec.decode(encoded, into: output, maximumConcurrency: threads, decoder: decoder)
            } alongside: {
                guard comparedWithZipNN, let zipNN else { return }
                zipNNRounds.append(try zipNN.round(file: sampleFile, dtype: dtype))
            }
            if comparedWithZipNN { ours = (result.ratio, Double(input.count) / result.decompress) }
            let name = decoder == .preferred ? "lorastore xans" : "lorastore xans, \(decoder) decoder"
            report.row(row(sample.label, name, threads, result, size: input.count, references: references))
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
            report.row(row(sample.label, "lorastore bgzip", threads, result, size: input.count, references: references))
        }
        for level: Int32 in [6, 1] {
            let (ratio, compress, decompress) = try zlib(input, level: level, repetitions: options.repetitions, dtype: dtype)
            report.row([
                sample.label, "zlib -\(level)", "1", Format.ratio(ratio),
                Format.rate(Double(input.count) / compress, of: references.readRewriteSingle),
                Format.rate(Double(input.count) / decompress, of: references.readRewriteSingle),
            ])
        }
        guard let zipNN, let first = zipNNRounds.first, let ours else { return }
        let zipNNRatio = Double(first.compressed) / Double(first.bytes)
        let zipNNCompress = Double(first.bytes) / (zipNNRounds.map(\.compressSeconds).min() ?? .infinity)
        let zipNNDecompress = Double(first.bytes) / (zipNNRounds.map(\.decompressSeconds).min() ?? .infinity)
        report.row([
            sample.label, "ZipNN \(zipNN.version)", "1", Format.ratio(zipNNRatio),
            Format.rate(zipNNCompress, of: references.readRewriteSingle),
            Format.rate(zipNNDecompress, of: references.readRewriteSingle),
        ])
        report.note(
            "\(sample.label), 1 thread: lorastore xans ratio \(Format.ratio(ours.ratio)) vs ZipNN \(Format.ratio(zipNNRatio)) "
                + "(target ≤ ZipNN: \(ours.ratio <= zipNNRatio ? "met" : "not met")); decompression "
                + "\(Format.rate(ours.decompress)) vs \(Format.rate(zipNNDecompress)), alternated, = "
                + "\(Format.ratio(ours.decompress / zipNNDecompress))× "
                + "(target ≥ ZipNN: \(ours.decompress >= zipNNDecompress ? "met" : "not met")).")
    }

    /// Ratio and best compress and decompress times of one of lorastore's codecs, after checking the round trip.
    /// Each repetition runs `alongside` first (ZipNN's round, for the row compared with it), then one
    /// encode and one decode.
    private static func measure(
        _ input: UnsafeRawBufferPointer, repetitions: Int, dtype: DType, codec: String,
        encode: () -> [UInt8]?,
        decode: (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) throws -> Void,
        alongside: () throws -> Void = {}
    ) throws -> (ratio: Double, compress: Double, decompress: Double) {
        var best = (compress: Double.infinity, decompress: Double.infinity)
        var encoded: [UInt8]?
        var decoded: ScratchBuffer?
        for _ in 0..<max(repetitions, 1) {
            try alongside()
            best.compress = min(best.compress, Timing.seconds { encoded = encode() })
            guard let encoded else { throw RoundTripFailure(codec: "lorastore \(codec) (nothing gained)", dtype: dtype) }
            // Each decode writes into fresh memory allocated as a blob read allocates it (huge pages for a
            // large blob), page faults included; the previous repetition's buffer is freed first.
            decoded = nil
            let decompress = try encoded.withUnsafeBytes { encodedBytes in
                try Timing.seconds {
                    let buffer = ScratchBuffer(byteCount: input.count)
                    try decode(encodedBytes, buffer.bytes)
                    decoded = buffer
                }
            }
            best.decompress = min(best.decompress, decompress)
        }
        guard let encoded, let decoded, equal(UnsafeRawBufferPointer(decoded.bytes), input) else {
            throw RoundTripFailure(codec: "lorastore \(codec)", dtype: dtype)
        }
        return (Double(encoded.count) / Double(input.count), best.compress, best.decompress)
    }

    /// A report row for one of lorastore's codecs.
    private static func row(
        _ label: String, _ codec: String, _ threads: Int, _ result: (ratio: Double, compress: Double, decompress: Double),
        size: Int, references: ReferenceBandwidths
    ) -> [String] {
        let reference = threads == 1 ? references.readRewriteSingle : references.readRewrite
        return [
            label, codec, "\(threads)", Format.ratio(result.ratio),
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

        var description: String { "\(codec) did not round-trip a \(dtype.rawValue) sample" }
    }
}
