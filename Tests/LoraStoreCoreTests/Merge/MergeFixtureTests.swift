import Foundation
import Testing
@testable import LoraStoreCore

/// Merges reproduce PEFT's `merge_and_unload()` on the ground-truth fixtures.
@Suite("Merging the PEFT fixtures")
struct MergeFixtureTests {
    static let cases: [(adapter: String, base: String)] = [
        ("a_r8_qv", "base_fp32"), ("b_r16_all_rslora", "base_fp32"), ("c_r4_patterns", "base_fp32"),
        ("d_r8_qv_lmhead_saved", "base_fp32"), ("f_dora_r8_qv", "base_fp32"), ("g_gpt2_r8_fan_in_fan_out", "gpt2_fp32"),
    ]

    @Test(arguments: cases)
    func reproducesPEFT(adapter: String, base: String) throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            try test.push(base, as: "micro/base")
            try test.push("adapters/\(adapter)", as: "acme/adapter", base: "micro/base")
            let merged = try test.merge(base: "micro/base", adapters: [("acme/adapter", 1)])
            let expected = try LoadedTensor.file(Fixtures.url("expected/\(adapter)/merged_touched.safetensors"))
            let original = try LoadedTensor.file(Fixtures.url("\(base)/model.safetensors"))
            #expect(merged.count == original.count)
            for (name, tensor) in original {
                let output = try #require(merged[name], "\(name) missing from the output")
                if let touched = expected[name] {
                    #expect(output.shape == touched.shape && output.dtype == touched.dtype, "\(name)")
                    #expect(maxDifference(output, touched) <= 1e-6, "\(name) differs from PEFT by \(maxDifference(output, touched))")
                } else {
                    #expect(output == tensor, "\(name) is not bit-identical to the base")
                }
            }
        }
    }

    @Test func embeddingAndLinearLoRAOnTheHead() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            try test.push("adapters/h_r4_embed_lmhead_lora", as: "acme/h", base: "micro/base:fp32")
            let merged = try test.merge(base: "micro/base:fp32", adapters: [("acme/h", 1)])
            let base = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
            let factors = try LoadedTensor.file(Fixtures.url("adapters/h_r4_embed_lmhead_lora/adapter_model.safetensors"))
            // Embedding: W + (B·A)ᵀ · alpha/r, A [4, 256], B [64, 4]; the head is a Linear LoRA: W + B·A.
            let a = try #require(factors["base_model.model.model.embed_tokens.lora_embedding_A"]).floats
            let b = try #require(factors["base_model.model.model.embed_tokens.lora_embedding_B"]).floats
            let w = try #require(base["model.embed_tokens.weight"]).floats
            let out = try #require(merged["model.embed_tokens.weight"]).floats
            var worst: Float = 0
            for token in 0..<256 {
                for feature in 0..<64 {
                    var delta = 0.0
                    for k in 0..<4 { delta += Double(b[feature * 4 + k]) * Double(a[k * 256 + token]) }
                    worst = max(worst, abs(out[token * 64 + feature] - Float(Double(w[token * 64 + feature]) + delta)))
                }
            }
            #expect(worst <= 1e-6)
            #expect(merged["lm_head.weight"] != base["lm_head.weight"])
            #expect(merged["model.norm.weight"] == base["model.norm.weight"])
        }
    }

    /// bf16(W + Δ): the delta is computed in F32 from the upcast adapter and added in F32, then rounded once.
    @Test func bf16AdapterOnBF16BaseRoundsOnce() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            try test.push("base_bf16", as: "micro/base:bf16")
            try test.push("adapters/e_r8_qv_bf16", as: "acme/e", base: "micro/base:bf16")
            let merged = try test.merge(base: "micro/base:bf16", adapters: [("acme/e", 1)])
            let base = try LoadedTensor.file(Fixtures.url("base_bf16/model.safetensors"))
            let factors = try LoadedTensor.file(Fixtures.url("adapters/e_r8_qv_bf16/adapter_model.safetensors"))
            var roundedOnceDiffersFromRoundingTwice = 0
            var notRoundedOnce: [String] = []
            for module in ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj"] {
                let output = try #require(merged[module + ".weight"])
                #expect(output.dtype == .bf16)
                let w = try #require(base[module + ".weight"]).floats
                let a = try #require(factors["base_model.model.\(module).lora_A.weight"])
                let b = try #require(factors["base_model.model.\(module).lora_B.weight"])
                let (rows, columns, rank) = (b.shape[0], a.shape[1], a.shape[0])
                let (af, bf, out) = (a.floats, b.floats, output.floats)
                for row in 0..<rows {
                    for column in 0..<columns {
                        var delta: Float = 0
                        for k in 0..<rank { delta = delta.addingProduct(2 * bf[row * rank + k], af[k * columns + column]) }
                        let once = FloatConversion.float(fromBFloat16: FloatConversion.bfloat16(from: w[row * columns + column] + delta))
                        let roundedDelta = FloatConversion.float(fromBFloat16: FloatConversion.bfloat16(from: delta))
                        let twice = FloatConversion.float(fromBFloat16: FloatConversion.bfloat16(from: w[row * columns + column] + roundedDelta))
                        if out[row * columns + column] != once {
                            notRoundedOnce.append("\(module)[\(row), \(column)]: \(out[row * columns + column]), not \(once)")
                        }
                        if once != twice { roundedOnceDiffersFromRoundingTwice += 1 }
                    }
                }
            }
            #expect(notRoundedOnce.isEmpty, "\(notRoundedOnce.count) elements, first \(notRoundedOnce.prefix(5))")
            #expect(roundedOnceDiffersFromRoundingTwice > 0, "the fixture should show why rounding once matters")
        }
    }

    /// A measured merge computes each tensor's delta a block of rows at a time: any block size gives the
    /// same figures, to the bit, for two adapters on every module (transposed embedding LoRA included) and
    /// for GPT-2's fan-in-fan-out layout.
    @Test func measurementsDoNotDependOnTheDeltaBlockSize() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            try test.push("adapters/b_r16_all_rslora", as: "acme/b", base: "micro/base:fp32")
            try test.push("adapters/h_r4_embed_lmhead_lora", as: "acme/h", base: "micro/base:fp32")
            try test.push("gpt2_fp32", as: "micro/gpt2")
            try test.push("adapters/g_gpt2_r8_fan_in_fan_out", as: "acme/g", base: "micro/gpt2")
            let cases: [(base: String, adapters: [(String, Double)])] = [
                ("micro/base:fp32", [("acme/a", 0.5), ("acme/b", 0.7), ("acme/h", 1)]), ("micro/gpt2", [("acme/g", 1)]),
            ]
            for (base, adapters) in cases {
                let plan = try MergePlan(
                    base: try test.store.resolve(try Reference(parsing: base)),
                    adapters: try adapters.map {
                        WeightedAdapter(digest: try test.store.resolve(try Reference(parsing: $0.0)).digest, weight: $0.1)
                    },
                    options: MergeOptions(outputType: .bf16), store: test.store)
                var reports: [[BuildReport.Tensor]] = []
                for blockBytes in [1, 4 * 7 * 64, MergeEngine.defaultMeasuredDeltaBlockBytes] {
                    var engine = MergeEngine(plan: plan, store: test.store)
                    engine.measuredDeltaBlockBytes = blockBytes
                    reports.append(try engine.run(measuring: true) { _, _ in })
                }
                #expect(reports[0].count > 2, "\(base): the merge measured \(reports[0].count) tensors")
                #expect(reports[0] == reports[1] && reports[1] == reports[2], "\(base)")
            }
        }
    }

    @Test func sameInputsGiveTheSameBytesOnAnyNumberOfThreads() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            try test.push("adapters/b_r16_all_rslora", as: "acme/b", base: "micro/base:fp32")
            let base = try test.store.resolve(try Reference(parsing: "micro/base:fp32"))
            let adapter = try test.store.resolve(try Reference(parsing: "acme/b"))
            let plan = try MergePlan(
                base: base, adapters: [WeightedAdapter(digest: adapter.digest, weight: 0.7)],
                options: MergeOptions(outputType: .bf16), store: test.store)
            var outputs: [[[UInt8]]] = []
            for threads in [1, 2, 3] {
                var tensors: [[UInt8]] = []
                try MergeEngine(plan: plan, store: test.store, threads: threads).run { _, bytes in tensors.append(Array(bytes)) }
                outputs.append(tensors)
            }
            #expect(outputs.allSatisfy { !$0.isEmpty }, "the engine delivered no tensors")
            #expect(outputs[0] == outputs[1] && outputs[1] == outputs[2])

            // Into caller memory (the whole model, tensor after tensor), the same bytes, pass-through included.
            var model = [UInt8](repeating: 0xAB, count: plan.outputBytes)
            var offset = 0
            try model.withUnsafeMutableBytes { model in
                try MergeEngine(plan: plan, store: test.store, threads: 2).run { tensor in
                    defer { offset += tensor.byteCount }
                    return UnsafeMutableRawBufferPointer(rebasing: model[offset ..< offset + tensor.byteCount])
                }
            }
            #expect(offset == plan.outputBytes)
            #expect(model == Array(outputs[0].joined()))
        }
    }

    /// The consumer's first error stops the merge: it is rethrown, and no later tensor reaches the consumer.
    @Test func consumerErrorStopsTheMerge() throws {
        struct Refused: Error, Equatable {}
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            try test.push("adapters/b_r16_all_rslora", as: "acme/b", base: "micro/base:fp32")
            let plan = try MergePlan(
                base: try test.store.resolve(try Reference(parsing: "micro/base:fp32")),
                adapters: [WeightedAdapter(digest: try test.store.resolve(try Reference(parsing: "acme/b")).digest, weight: 1)],
                options: MergeOptions(), store: test.store)
            #expect(plan.tensors.count > 3)
            var received: [String] = []
            #expect(throws: Refused()) {
                try MergeEngine(plan: plan, store: test.store).run { tensor, _ in
                    received.append(tensor.name)
                    if received.count == 2 { throw Refused() }
                }
            }
            #expect(received == plan.tensors.prefix(2).map(\.name))
        }
    }

    /// The two ways into caller memory give the streamed merge's bytes: the whole model, every tensor in
    /// place; or only the tensors whose bytes differ from the base's, the others never asked for. On a
    /// float base and on an int8 base whose adapters are kept separate (every weight the base's own).
    @Test(arguments: [false, true])
    func mergesIntoMemoryGiveTheStreamedBytes(quantizedSeparate: Bool) throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            var baseName = "micro/base:fp32"
            if quantizedSeparate {
                baseName = "micro/base:i8"
                try test.store.quantize(
                    try Reference(parsing: "micro/base:fp32"), scheme: .int8Row, to: try Reference(parsing: baseName))
            }
            try test.push("adapters/b_r16_all_rslora", as: "acme/b", base: "micro/base:fp32")
            let plan = try MergePlan(
                base: try test.store.resolve(try Reference(parsing: baseName)),
                adapters: [WeightedAdapter(digest: try test.store.resolve(try Reference(parsing: "acme/b")).digest, weight: 1)],
                options: MergeOptions(quantizedBase: quantizedSeparate ? .separate : nil), store: test.store)
            var streamed: [String: [UInt8]] = [:]
            // A slow consumer: the engine computes the next tensor meanwhile, which must not be into the
            // buffer being read.
            try MergeEngine(plan: plan, store: test.store).run { tensor, bytes in
                usleep(2000)
                streamed[tensor.name] = Array(bytes)
            }

            var model = [UInt8](repeating: 0xAB, count: plan.outputBytes)
            var offset = 0
            try model.withUnsafeMutableBytes { model in
                try MergeEngine(plan: plan, store: test.store).run(into: { tensor in
                    defer { offset += tensor.byteCount }
                    return UnsafeMutableRawBufferPointer(rebasing: model[offset ..< offset + tensor.byteCount])
                })
            }
            #expect(offset == plan.outputBytes)
            // Compared into a Bool first: a failing `==` of megabyte arrays would print every byte.
            let wholeModelMatches = model == Array(plan.tensors.compactMap { streamed[$0.name] }.joined())
            #expect(wholeModelMatches, "the whole model in memory differs from the streamed tensors")

            var given: [(name: String, buffer: UnsafeMutableRawBufferPointer)] = []
            defer { given.forEach { $0.buffer.deallocate() } }
            try MergeEngine(plan: plan, store: test.store).run(unchanged: .leftInBase) { tensor in
                given.append((tensor.name, .allocate(byteCount: tensor.byteCount, alignment: 64)))
                return given[given.count - 1].buffer
            }
            let expected = plan.tensors.filter { !$0.reusesBaseBytes }.map(\.name)
            #expect(given.map(\.name) == expected)
            #expect(quantizedSeparate ? expected.isEmpty : !expected.isEmpty && expected.count < plan.tensors.count)
            for (name, buffer) in given {
                let matches = Array(buffer) == streamed[name]
                #expect(matches, "\(name) differs from the streamed tensor")
            }
        }
    }

    /// Large pass-through tensors are copied in shares, one per thread, with streaming stores after an
    /// unaligned head; every byte lands in place, and nothing around the target is touched.
    @Test(arguments: [1, 2, 3], [0, 5])
    func passThroughCopiesSplitAcrossThreadsExactly(threads: Int, misalignment: Int) {
        let count = (9 << 20) + 7
        let source = (0 ..< count + 3).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 13) }
        var target = [UInt8](repeating: 0xEE, count: count + misalignment + 1)
        source.withUnsafeBytes { source in
            target.withUnsafeMutableBytes { target in
                MergeEngine.copy(
                    UnsafeRawBufferPointer(rebasing: source[3...]),
                    into: UnsafeMutableRawBufferPointer(rebasing: target[misalignment ..< misalignment + count]),
                    threads: threads)
            }
        }
        #expect(target[misalignment ..< misalignment + count].elementsEqual(source[3...]))
        #expect(target[..<misalignment].allSatisfy { $0 == 0xEE } && target.last == 0xEE)
    }

    @Test func shardedOutputHoldsTheSameTensors() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            let single = try test.merge(base: "micro/base:fp32", adapters: [("acme/a", 1)], name: "single")
            let sharded = try test.merge(
                base: "micro/base:fp32", adapters: [("acme/a", 1)], options: MergeOptions(maxShardSize: 100_000),
                name: "sharded")
            #expect(single == sharded)
            let folder = directory.appending(path: "sharded")
            let index = try ShardIndex(contentsOf: folder.appending(path: "model.safetensors.index.json"))
            #expect(index.shardFiles.count > 1)
            #expect(index.totalSize == single.values.reduce(0) { $0 + $1.bytes.count })
            #expect(index.weightMap.count == single.count)
            for shard in index.shardFiles {
                let file = try SafetensorsFile(contentsOf: folder.appending(path: shard))
                #expect(file.metadata?["format"] == "pt")
                #expect(file.metadata?["lorastore.base"] != nil)
                #expect(file.dataOffset + (file.tensors.last?.dataRange.upperBound ?? 0) <= 100_000 + file.dataOffset || file.tensors.count == 1)
            }
            #expect(FileManager.default.fileExists(atPath: folder.appending(path: "config.json").path))
        }
    }

    /// PEFT lays a module out by its class whatever `fan_in_fan_out` says: GPT-2's Conv1D layers as
    /// `[in, out]`, Llama's Linear layers as `[out, in]`.
    @Test func theModuleClassNotTheFlagDecidesTheLayout() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            /// Merges `fixture` with its flag flipped from `flag` onto `base` and compares with PEFT's output.
            func expectPEFTOutput(_ fixture: String, base: String, flag: Bool) throws {
                try test.push(base, as: "micro/\(base)")
                let folder = directory.appending(path: "\(fixture)-flipped")
                try AdapterFolder.copy(fixture, to: folder, editConfig: {
                    $0.replacingOccurrences(of: "\"fan_in_fan_out\": \(flag)", with: "\"fan_in_fan_out\": \(!flag)")
                })
                try test.store.push(
                    folder, to: try Reference(parsing: "acme/\(base)"),
                    options: PushOptions(base: try Reference(parsing: "micro/\(base)")))
                let merged = try test.merge(base: "micro/\(base)", adapters: [("acme/\(base)", 1)], name: base)
                let expected = try LoadedTensor.file(Fixtures.url("expected/\(fixture)/merged_touched.safetensors"))
                for (name, tensor) in expected {
                    let output = try #require(merged[name], "\(fixture): \(name) missing from the output")
                    #expect(maxDifference(tensor, output) <= 1e-6, "\(fixture): \(name)")
                }
            }
            try expectPEFTOutput("g_gpt2_r8_fan_in_fan_out", base: "gpt2_fp32", flag: true)
            try expectPEFTOutput("a_r8_qv", base: "base_fp32", flag: false)
        }
    }
}
