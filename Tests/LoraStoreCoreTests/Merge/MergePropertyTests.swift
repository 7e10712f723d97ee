import Foundation
import Testing
@testable import LoraStoreCore

/// Algebraic properties of weighted merges, and the combinations lorastore refuses.
@Suite("Merge properties")
struct MergePropertyTests {
    private func store(_ directory: URL, adapters: [String: String]) throws -> TestStore {
        let test = try TestStore(in: directory).withFP32Base()
        for (name, fixture) in adapters {
            try test.push("adapters/\(fixture)", as: name, base: "micro/base:fp32")
        }
        return test
    }

    @Test func weightZeroReturnsTheBaseBitIdentically() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory, adapters: ["acme/b": "b_r16_all_rslora", "acme/d": "d_r8_qv_lmhead_saved"])
            let merged = try test.merge(base: "micro/base:fp32", adapters: [("acme/b", 0), ("acme/d", 0)])
            #expect(merged == (try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))))
        }
    }

    @Test func weightEqualsScalingB() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory, adapters: ["acme/a": "a_r8_qv"])
            let folder = directory.appending(path: "scaled")
            try AdapterFolder.copy("a_r8_qv", to: folder) { tensors in
                for index in tensors.indices where tensors[index].name.contains("lora_B") {
                    tensors[index].values = tensors[index].values.map { $0 * 0.37 }
                }
            }
            try test.store.push(folder, to: try Reference(parsing: "acme/scaled"), options: PushOptions(base: try Reference(parsing: "micro/base:fp32")))
            let weighted = try test.merge(base: "micro/base:fp32", adapters: [("acme/a", 0.37)], name: "weighted")
            let scaled = try test.merge(base: "micro/base:fp32", adapters: [("acme/scaled", 1)], name: "scaled-merge")
            for (name, tensor) in weighted {
                let other = try #require(scaled[name], "\(name) missing from the scaled merge")
                #expect(maxDifference(tensor, other) <= 1e-6, "\(name)")
            }
        }
    }

    @Test func adapterOrderChangesNothingBeyondRounding() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory, adapters: ["acme/a": "a_r8_qv", "acme/a2": "a2_r8_qkv", "acme/b": "b_r16_all_rslora"])
            let forward = try test.merge(base: "micro/base:fp32", adapters: [("acme/a", 0.5), ("acme/a2", -0.25), ("acme/b", 1)], name: "forward")
            let backward = try test.merge(base: "micro/base:fp32", adapters: [("acme/b", 1), ("acme/a2", -0.25), ("acme/a", 0.5)], name: "backward")
            for (name, tensor) in forward {
                let other = try #require(backward[name], "\(name) missing from the backward merge")
                #expect(maxDifference(tensor, other) <= 1e-6, "\(name)")
            }
        }
    }

    @Test func subtractingTheDeltaReturnsTheBase() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory, adapters: ["acme/a": "a_r8_qv"])
            let merged = try test.merge(base: "micro/base:fp32", adapters: [("acme/a", 1)])
            let deltas = try LoadedTensor.file(Fixtures.url("expected/a_r8_qv/lora_delta.safetensors"))
            let base = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
            for (name, delta) in deltas {
                let output = try #require(merged[name], "\(name) missing from the merge")
                let original = try #require(base[name], "\(name) missing from the base")
                let restored = zip(output.floats, delta.floats).map { $0 - $1 }
                let worst = zip(restored, original.floats).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
                #expect(worst <= 1e-6, "\(name)")
            }
            let cancelled = try test.merge(base: "micro/base:fp32", adapters: [("acme/a", 1), ("acme/a", -1)], name: "cancelled")
            for (name, tensor) in base {
                let other = try #require(cancelled[name], "\(name) missing from the cancelled merge")
                #expect(maxDifference(tensor, other) <= 1e-6, "\(name)")
            }
        }
    }

    @Test func peftLinearCombinesFactorsBeforeMultiplyingWithTheSignOnA() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory, adapters: ["acme/a": "a_r8_qv", "acme/a2": "a2_r8_qkv"])
            let weights = (0.7, -0.3)
            let merged = try test.merge(
                base: "micro/base:fp32", adapters: [("acme/a", weights.0), ("acme/a2", weights.1)],
                options: MergeOptions(combine: .peftLinear))
            let base = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
            let first = try LoadedTensor.file(Fixtures.url("adapters/a_r8_qv/adapter_model.safetensors"))
            let second = try LoadedTensor.file(Fixtures.url("adapters/a2_r8_qkv/adapter_model.safetensors"))
            let module = "model.layers.0.self_attn.q_proj"
            // cᵢ = √|wᵢ·sᵢ| (scales 16/8 and 8/8); PEFT puts the sign of w₂·s₂ on A₂ only.
            let (c1, c2) = ((weights.0 * 2).squareRoot(), (-weights.1 * 1).squareRoot())
            let a1 = try #require(first["base_model.model.\(module).lora_A.weight"]).floats
            let b1 = try #require(first["base_model.model.\(module).lora_B.weight"]).floats
            let a2 = try #require(second["base_model.model.\(module).lora_A.weight"]).floats
            let b2 = try #require(second["base_model.model.\(module).lora_B.weight"]).floats
            let w = try #require(base[module + ".weight"]).floats
            let out = try #require(merged[module + ".weight"]).floats
            var worst = 0.0
            for row in 0..<64 {
                for column in 0..<64 {
                    var delta = 0.0
                    for k in 0..<8 {
                        let b = c1 * Double(b1[row * 8 + k]) + c2 * Double(b2[row * 8 + k])
                        let a = c1 * Double(a1[k * 64 + column]) - c2 * Double(a2[k * 64 + column])
                        delta += b * a
                    }
                    worst = max(worst, abs(Double(out[row * 64 + column]) - (Double(w[row * 64 + column]) + delta)))
                }
            }
            #expect(worst <= 1e-6)
            // k_proj is touched by a2 only: the same as a plain merge of a2 at its weight.
            let plain = try test.merge(base: "micro/base:fp32", adapters: [("acme/a2", weights.1)], name: "plain")
            let kProj = "model.layers.0.self_attn.k_proj.weight"
            let combined = try #require(merged[kProj])
            let alone = try #require(plain[kProj])
            #expect(maxDifference(combined, alone) <= 1e-6)
        }
    }

    /// PEFT's `add_weighted_adapter` wraps modules_to_save afresh from the base, so merging the combined
    /// adapter keeps the base's `lm_head`; the exact combination takes the adapter's.
    @Test func peftLinearKeepsTheBaseWhereAnAdapterSavesAModule() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory, adapters: ["acme/d": "d_r8_qv_lmhead_saved"])
            let exact = try test.merge(base: "micro/base:fp32", adapters: [("acme/d", 1)], name: "exact")
            let linear = try test.merge(
                base: "micro/base:fp32", adapters: [("acme/d", 1)], options: MergeOptions(combine: .peftLinear), name: "linear")
            let base = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
            let saved = try LoadedTensor.file(Fixtures.url("adapters/d_r8_qv_lmhead_saved/adapter_model.safetensors"))
            #expect(try #require(exact["lm_head.weight"]).floats == (try #require(saved["base_model.model.lm_head.weight"])).floats)
            #expect(try #require(linear["lm_head.weight"]).floats == (try #require(base["lm_head.weight"])).floats)
            let q = "model.layers.0.self_attn.q_proj.weight"
            #expect(try #require(linear[q]).floats != (try #require(base[q])).floats, "the LoRA update still applies")
        }
    }

    @Test func peftLinearScalesByTheRootOfTheRankWhenTheFirstAdapterUsesRSLoRA() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory, adapters: ["acme/b": "b_r16_all_rslora"])
            let exact = try test.merge(base: "micro/base:fp32", adapters: [("acme/b", 0.5)], name: "exact")
            let linear = try test.merge(
                base: "micro/base:fp32", adapters: [("acme/b", 0.5)], options: MergeOptions(combine: .peftLinear), name: "linear")
            let base = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
            let name = "model.layers.1.mlp.down_proj.weight"
            let w = try #require(base[name]).floats
            let e = try #require(exact[name]).floats
            let l = try #require(linear[name]).floats
            var worst: Float = 0
            var largest: Float = 0
            for index in w.indices {
                // PEFT's combined adapter has r = lora_alpha = 16 and keeps rsLoRA: its scale is 16 / √16 = 4.
                worst = max(worst, abs((l[index] - w[index]) - 4 * (e[index] - w[index])))
                largest = max(largest, abs(e[index] - w[index]))
            }
            #expect(largest > 1e-3, "the adapter changes the tensor")
            #expect(worst <= 1e-5)
        }
    }

    @Test func baseLayerCopiesReplaceTheBaseTensorAsPEFTLoadsThemAndEqualOnesChangeNothing() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory, adapters: ["acme/h": "h_r4_embed_lmhead_lora"])
            let base = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
            let copying = "base_model.model.model.layers.0.self_attn.k_proj.base_layer.weight"
            let folder = directory.appending(path: "trained-copy")
            let original = try #require(base["model.layers.0.self_attn.k_proj.weight"])
            try AdapterFolder.copy("a_r8_qv", to: folder, editTensors: { tensors in
                tensors.append((copying, original.shape, original.floats.map { $0 + 0.5 }))
            })
            try test.store.push(folder, to: try Reference(parsing: "acme/copy"), options: PushOptions(base: try Reference(parsing: "micro/base:fp32")))
            let merged = try test.merge(base: "micro/base:fp32", adapters: [("acme/copy", 1)])
            let replaced = try #require(merged["model.layers.0.self_attn.k_proj.weight"])
            #expect(replaced.floats == original.floats.map { $0 + 0.5 })

            // h's lm_head and embedding copies equal the base: its merge is the LoRA delta alone, as before.
            let withCopies = try test.merge(base: "micro/base:fp32", adapters: [("acme/h", 1)], name: "h")
            let bare = directory.appending(path: "h-without-copies")
            try AdapterFolder.copy("h_r4_embed_lmhead_lora", to: bare, editTensors: { $0.removeAll { $0.name.contains(".base_layer.") } })
            try test.store.push(bare, to: try Reference(parsing: "acme/h-bare"), options: PushOptions(base: try Reference(parsing: "micro/base:fp32")))
            #expect(withCopies == (try test.merge(base: "micro/base:fp32", adapters: [("acme/h-bare", 1)], name: "h-bare")))

            let changed = directory.appending(path: "h-resized")
            try AdapterFolder.copy("h_r4_embed_lmhead_lora", to: changed, editTensors: { tensors in
                for index in tensors.indices where tensors[index].name == "base_model.model.lm_head.base_layer.weight" {
                    tensors[index].values = tensors[index].values.map { $0 + 0.5 }
                }
            })
            try test.store.push(changed, to: try Reference(parsing: "acme/h-resized"), options: PushOptions(base: try Reference(parsing: "micro/base:fp32")))
            #expect { try test.merge(base: "micro/base:fp32", adapters: [("acme/h-resized", 1)], name: "resized") } throws: {
                "\($0)".contains("lm_head.weight") && "\($0)".contains("not supported")
            }
        }
    }

    @Test func onlyTheModulesTheConfigTargetsAreMergedAsPEFTLoadsThem() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory, adapters: ["acme/a": "a_r8_qv"])
            let full = try test.merge(base: "micro/base:fp32", adapters: [("acme/a", 1)], name: "full")
            let base = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
            func pushed(_ name: String, config edit: @escaping (String) -> String) throws -> (PushResult, [String: LoadedTensor]) {
                let folder = directory.appending(path: name)
                try AdapterFolder.copy("a_r8_qv", to: folder, editConfig: edit)
                let result = try test.store.push(
                    folder, to: try Reference(parsing: "acme/\(name)"), options: PushOptions(base: try Reference(parsing: "micro/base:fp32")))
                return (result, try test.merge(base: "micro/base:fp32", adapters: [("acme/\(name)", 1)], name: "merged-\(name)"))
            }
            func changed(_ merged: [String: LoadedTensor]) -> Set<String> {
                Set(merged.keys.filter { merged[$0] != base[$0] })
            }
            let q0 = "model.layers.0.self_attn.q_proj.weight"
            // A list of names with layers_to_transform: layer 0's q_proj only.
            let (layerResult, layer) = try pushed("layer0") {
                $0.replacingOccurrences(of: "\"v_proj\"", with: "\"q_proj\"")
                    .replacingOccurrences(of: "\"layers_to_transform\": null", with: "\"layers_to_transform\": [0]")
            }
            #expect(changed(layer) == [q0])
            #expect(layer[q0] == full[q0])
            #expect(layerResult.skippedFiles.count == 3 && layerResult.skippedFiles.allSatisfy { $0.contains("does not target") })
            // exclude_modules wins over target_modules.
            let (_, excluded) = try pushed("excluded") {
                $0.replacingOccurrences(of: "\"exclude_modules\": null", with: "\"exclude_modules\": [\"v_proj\"]")
            }
            #expect(changed(excluded) == ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.q_proj.weight"])
            // A regular expression must match the whole module path.
            let (_, pattern) = try pushed("pattern") {
                $0.replacingOccurrences(
                    of: "\"target_modules\": [\n    \"q_proj\",\n    \"v_proj\"\n  ]",
                    with: "\"target_modules\": \"model\\\\.layers\\\\.1\\\\..*_proj\"")
            }
            #expect(changed(pattern) == ["model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.v_proj.weight"])
            #expect(throws: StoreError.self, "a config that targets none of the file's modules") {
                try pushed("none") { $0.replacingOccurrences(of: "\"layers_to_transform\": null", with: "\"layers_to_transform\": [7]") }
            }
        }
    }

    @Test func refusesWhatPEFTCannotMerge() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(
                directory,
                adapters: ["acme/d": "d_r8_qv_lmhead_saved", "acme/f": "f_dora_r8_qv", "acme/a": "a_r8_qv", "acme/b": "b_r16_all_rslora"])
            func refused(_ adapters: [(String, Double)], combine: CombineMode = .exact, mentioning text: String) {
                do {
                    _ = try test.merge(base: "micro/base:fp32", adapters: adapters, options: MergeOptions(combine: combine), name: UUID().uuidString)
                    Issue.record("merge of \(adapters) succeeded")
                } catch {
                    #expect("\(error)".contains(text), "\(error)")
                }
            }
            refused([("acme/d", 1), ("acme/d", 0.5)], mentioning: "both replace lm_head.weight")
            refused([("acme/f", 0.5)], mentioning: "DoRA")
            refused([("acme/f", 1), ("acme/a", 1)], mentioning: "DoRA")
            refused([("acme/a", 1), ("acme/b", 1)], combine: .peftLinear, mentioning: "equal rank")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).allSatisfy { $0 == "store" })
        }
    }

    @Test func nonFiniteResultsAreRefusedNamingTheTensor() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let folder = directory.appending(path: "huge")
            try AdapterFolder.copy("a_r8_qv", to: folder) { tensors in
                for index in tensors.indices { tensors[index].values = tensors[index].values.map { $0 * 1e24 } }
            }
            try test.store.push(folder, to: try Reference(parsing: "acme/huge"), options: PushOptions(base: try Reference(parsing: "micro/base:fp32")))
            #expect(throws: StoreError.nonFiniteResult(tensor: "model.layers.0.self_attn.q_proj.weight")) {
                _ = try test.merge(base: "micro/base:fp32", adapters: [("acme/huge", 1)])
            }
            #expect(!FileManager.default.fileExists(atPath: directory.appending(path: "merged").path))
        }
    }

    @Test func outputTypeConvertsEveryFloatTensor() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory, adapters: ["acme/a": "a_r8_qv"])
            let merged = try test.merge(base: "micro/base:fp32", adapters: [("acme/a", 1)], options: MergeOptions(outputType: .bf16))
            let exact = try test.merge(base: "micro/base:fp32", adapters: [("acme/a", 1)], name: "exact")
            for (name, tensor) in merged {
                #expect(tensor.dtype == .bf16)
                let expected = try #require(exact[name], "\(name)").floats.map {
                    FloatConversion.float(fromBFloat16: FloatConversion.bfloat16(from: $0))
                }
                #expect(tensor.floats == expected, "\(name) is not the F32 result rounded once to BF16")
            }
        }
    }
}
