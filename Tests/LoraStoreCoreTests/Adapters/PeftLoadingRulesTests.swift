import Foundation
import Testing
@testable import LoraStoreCore

/// What PEFT 0.21 loads from an adapter whose config leaves something out or contradicts its file: a merge
/// takes exactly those tensors, or refuses where PEFT would make values up.
@Suite("PEFT's loading rules for incomplete configs")
struct PeftLoadingRulesTests {
    /// The config text with `change` applied to its JSON object.
    private func edited(_ config: String, _ change: (inout [String: Any]) -> Void) -> String {
        guard var object = (try? JSONSerialization.jsonObject(with: Data(config.utf8))) as? [String: Any] else { return config }
        change(&object)
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    private func push(_ folder: URL, as name: String, base: String = "micro/base:fp32", in test: TestStore) throws -> PushResult {
        try test.store.push(folder, to: try Reference(parsing: name), options: PushOptions(base: try Reference(parsing: base)))
    }

    /// Pushes `folder` expecting a refusal whose message holds every one of `mentions`, the store unchanged.
    private func expectRefused(
        _ folder: URL, base: String = "micro/base:fp32", in test: TestStore, mentioning mentions: [String],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let before = try test.snapshot()
        #expect(sourceLocation: sourceLocation) {
            try push(folder, as: "acme/refused", base: base, in: test)
        } throws: { error in
            mentions.allSatisfy { "\(error)".contains($0) }
        }
        #expect(try test.snapshot() == before, sourceLocation: sourceLocation)
    }

    /// Without `target_modules`, PEFT targets its defaults for the base's model type (`q_proj` and `v_proj`
    /// for llama) and never loads the file's other factors.
    @Test func withoutTargetModulesOnlyPeftsDefaultsForTheModelTypeAreMerged() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let unsaid = directory.appending(path: "unsaid")
            try AdapterFolder.copy("b_r16_all_rslora", to: unsaid, editConfig: { config in
                edited(config) { $0.removeValue(forKey: "target_modules") }
            })
            let named = directory.appending(path: "named")
            try AdapterFolder.copy("b_r16_all_rslora", to: named, editConfig: { config in
                edited(config) { $0["target_modules"] = ["q_proj", "v_proj"] }
            })
            let result = try push(unsaid, as: "acme/unsaid", in: test)
            _ = try push(named, as: "acme/named", in: test)
            let merged = try test.merge(base: "micro/base:fp32", adapters: [("acme/unsaid", 1)], name: "unsaid-merged")
            let expected = try test.merge(base: "micro/base:fp32", adapters: [("acme/named", 1)], name: "named-merged")
            let base = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
            // Compared into a Bool first: a failing `==` of the models would print every byte.
            let sameAsNamed = merged == expected
            #expect(sameAsNamed, "the merge differs from the same adapter targeting q_proj and v_proj")
            let changed = Set(merged.keys.filter { merged[$0] != base[$0] })
            #expect(!changed.isEmpty && changed.allSatisfy { $0.hasSuffix("q_proj.weight") || $0.hasSuffix("v_proj.weight") })
            #expect(result.skippedFiles.contains { $0.contains("k_proj") && $0.contains("does not target") })
        }
    }

    /// A model type PEFT has no defaults for makes PEFT refuse such an adapter; so does lorastore, naming
    /// the field.
    @Test func withoutTargetModulesAnUnknownModelTypeIsRefused() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let baseFolder = directory.appending(path: "base")
            try FileManager.default.copyItem(at: Fixtures.url("base_fp32"), to: baseFolder)
            let configURL = baseFolder.appending(path: "config.json")
            try edited(try String(contentsOf: configURL, encoding: .utf8)) { $0["model_type"] = "made_up_model" }
                .write(to: configURL, atomically: true, encoding: .utf8)
            try test.store.push(baseFolder, to: try Reference(parsing: "made/base"))
            let adapter = directory.appending(path: "unsaid")
            try AdapterFolder.copy("a_r8_qv", to: adapter, editConfig: { config in
                edited(config) { $0.removeValue(forKey: "target_modules") }
            })
            try expectRefused(adapter, base: "made/base", in: test, mentioning: ["no target_modules", "made_up_model"])
        }
    }

    /// Magnitude vectors in the file of a config with `use_dora` false are not loaded by PEFT: the merge is
    /// plain LoRA, as without them.
    @Test func magnitudesWithoutUseDoraAreIgnored() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let withMagnitudes = directory.appending(path: "with")
            try AdapterFolder.copy("f_dora_r8_qv", to: withMagnitudes, editConfig: { config in
                edited(config) { $0["use_dora"] = false }
            })
            let without = directory.appending(path: "without")
            try AdapterFolder.copy(
                "f_dora_r8_qv", to: without, editTensors: { $0.removeAll { $0.name.contains("lora_magnitude_vector") } },
                editConfig: { config in edited(config) { $0["use_dora"] = false } })
            let result = try push(withMagnitudes, as: "acme/with", in: test)
            _ = try push(without, as: "acme/without", in: test)
            let merged = try test.merge(base: "micro/base:fp32", adapters: [("acme/with", 1)], name: "with-merged")
            let plain = try test.merge(base: "micro/base:fp32", adapters: [("acme/without", 1)], name: "without-merged")
            let sameAsPlain = merged == plain
            #expect(sameAsPlain, "the merge differs from the same adapter without magnitudes")
            #expect(result.skippedFiles.contains { $0.contains("lora_magnitude_vector") && $0.contains("use_dora false") })
        }
    }

    /// A DoRA config whose file lacks a module's magnitude would have PEFT make one up as it loads; lorastore
    /// refuses it, naming `use_dora`, and the store is left as it was.
    @Test func useDoraWithoutMagnitudesIsRefused() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let adapter = directory.appending(path: "dora")
            try AdapterFolder.copy(
                "f_dora_r8_qv", to: adapter, editTensors: { $0.removeAll { $0.name.contains("lora_magnitude_vector") } })
            try expectRefused(adapter, in: test, mentioning: ["use_dora is true", "lora_magnitude_vector"])
        }
    }

    /// Features that change what PEFT builds or merges (copied layers, trainable token rows...) are refused
    /// by their config field, not by a tensor that does not fit.
    @Test(arguments: [
        ("layer_replication", "[[0, 1], [0, 1]]"), ("trainable_token_indices", "[3, 5]"), ("use_qalora", "true"),
        ("kasa_config", "{\"k\": 1}"),
    ])
    func featuresLorastoreDoesNotMergeAreRefusedByName(field: String, value: String) throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let adapter = directory.appending(path: "feature")
            try AdapterFolder.copy("a_r8_qv", to: adapter, editConfig: { config in
                edited(config) { $0[field] = try? JSONSerialization.jsonObject(with: Data(value.utf8), options: [.fragmentsAllowed]) }
            })
            try expectRefused(adapter, in: test, mentioning: ["adapter_config.json", "\"\(field)\" is set"])
        }
    }

    /// PEFT's linear combination refuses target_modules of mixed kinds, and applies the first adapter's
    /// layers_to_transform and exclude_modules to every adapter: lorastore refuses both rather than differ.
    @Test func peftLinearRefusesConfigsPEFTWouldCombineDifferently() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let variants: [(String, (inout [String: Any]) -> Void)] = [
                ("plain", { _ in }),
                ("layer0", { $0["layers_to_transform"] = [0] }),
                ("pattern", { $0["target_modules"] = ".*\\.(q|v)_proj" }),
                // PEFT turns its shorthand into names as it loads the adapter.
                ("all-linear", { $0["target_modules"] = "ALL-LINEAR" }),
                ("exclude-kv", { $0["exclude_modules"] = ["k_proj", "o_proj"] }),
                ("exclude-vk", { $0["exclude_modules"] = ["o_proj", "k_proj"] }),
            ]
            for (name, change) in variants {
                let folder = directory.appending(path: name)
                try AdapterFolder.copy("a_r8_qv", to: folder, editConfig: { config in edited(config, change) })
                _ = try push(folder, as: "acme/\(name)", in: test)
            }
            let base = try test.store.resolve(try Reference(parsing: "micro/base:fp32"))
            func plan(_ names: [String], combine: CombineMode = .peftLinear) throws -> MergePlan {
                try MergePlan(
                    base: base,
                    adapters: try names.map {
                        WeightedAdapter(digest: try test.store.resolve(try Reference(parsing: "acme/\($0)")).digest, weight: 0.5)
                    },
                    options: MergeOptions(combine: combine), store: test.store)
            }
            _ = try plan(["plain", "plain"])
            #expect { try plan(["plain", "layer0"]) } throws: { "\($0)".contains("layers_to_transform") }
            #expect { try plan(["plain", "pattern"]) } throws: { "\($0)".contains("one kind") }
            _ = try plan(["plain", "all-linear"])
            #expect { try plan(["all-linear", "pattern"]) } throws: { "\($0)".contains("one kind") }
            _ = try plan(["exclude-kv", "exclude-vk"])
            #expect { try plan(["plain", "exclude-kv"]) } throws: { "\($0)".contains("exclude_modules") }
            // The exact sum applies each adapter's own rules.
            _ = try plan(["plain", "layer0"], combine: .exact)
        }
    }

    /// target_modules in JSON is what the config holds; the form lorastore 0.1 registries wrote is still read.
    @Test func targetModulesDecodeInTheirOwnFormAndTheEarlierOne() throws {
        let decoder = JSONDecoder()
        func decoded(_ json: String) throws -> AdapterConfig.TargetModules {
            try decoder.decode([AdapterConfig.TargetModules].self, from: Data("[\(json)]".utf8))[0]
        }
        #expect(try decoded(#"["q_proj"]"#) == .names(["q_proj"]))
        #expect(try decoded(#"".*q""#) == .pattern(".*q"))
        #expect(try decoded("null") == .unspecified)
        #expect(try decoded(#"{"names": {"_0": ["q_proj"]}}"#) == .names(["q_proj"]))
        #expect(try decoded(#"{"pattern": {"_0": ".*q"}}"#) == .pattern(".*q"))
        #expect(try decoded(#"{"unspecified": {}}"#) == .unspecified)
        #expect(throws: DecodingError.self) { try decoded("7") }
        let encoded = try JSONEncoder().encode([AdapterConfig.TargetModules.names(["a"]), .pattern("b"), .unspecified])
        #expect(String(decoding: encoded, as: UTF8.self) == #"[["a"],"b",null]"#)
    }

    /// A base with tied embeddings stores no lm_head; an adapter that changes one is refused with that said,
    /// not taken for an adapter of another base.
    @Test func anOutputLayerMissingFromATiedBaseIsExplained() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let base = directory.appending(path: "tied.safetensors")
            try AdapterFolder.writeF32([("model.embed_tokens.weight", [8, 4], (0..<32).map { Float($0) / 32 })], to: base)
            try test.store.push(base, to: try Reference(parsing: "tiny/tied"))
            let adapter = directory.appending(path: "head")
            try FileManager.default.createDirectory(at: adapter, withIntermediateDirectories: true)
            try #"{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["lm_head"]}"#
                .write(to: adapter.appending(path: "adapter_config.json"), atomically: true, encoding: .utf8)
            try AdapterFolder.writeF32(
                [
                    ("base_model.model.lm_head.lora_A.weight", [2, 4], [Float](repeating: 0.1, count: 8)),
                    ("base_model.model.lm_head.lora_B.weight", [8, 2], [Float](repeating: 0.2, count: 16)),
                ], to: adapter.appending(path: "adapter_model.safetensors"))
            #expect {
                try push(adapter, as: "tiny/head", base: "tiny/tied", in: test)
            } throws: { error in
                "\(error)".contains("lm_head.weight") && "\(error)".contains("tied embeddings") && !"\(error)".contains("another base")
            }
        }
    }

    /// With bias="all", PEFT also saves the biases inside its modules_to_save wrapper (the trained copy's and
    /// the original's); loading uses neither, so the merge skips them and takes the module's saved tensors.
    @Test func biasAllSkipsTheModulesToSaveWrappersOwnCopies() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            try test.push("gpt2_fp32", as: "micro/gpt2")
            let adapter = directory.appending(path: "wrapped")
            let saved = (0..<64).map { Float($0) / 64 }
            try AdapterFolder.copy(
                "g_gpt2_r8_fan_in_fan_out", to: adapter,
                editTensors: { tensors in
                    tensors += [
                        ("base_model.model.transformer.ln_f.weight", [64], [Float](repeating: 1.5, count: 64)),
                        ("base_model.model.transformer.ln_f.bias", [64], saved),
                        ("base_model.model.transformer.ln_f.modules_to_save.bias", [64], [Float](repeating: 7, count: 64)),
                        ("base_model.model.transformer.ln_f.original_module.bias", [64], [Float](repeating: 9, count: 64)),
                    ]
                },
                editConfig: { config in
                    edited(config) {
                        $0["bias"] = "all"
                        $0["modules_to_save"] = ["ln_f"]
                    }
                })
            let result = try push(adapter, as: "acme/wrapped", base: "micro/gpt2", in: test)
            #expect(result.skippedFiles.filter { $0.contains("modules_to_save wrapper") }.count == 2)
            let merged = try test.merge(base: "micro/gpt2", adapters: [("acme/wrapped", 1)], name: "merged")
            #expect(try #require(merged["transformer.ln_f.bias"]).floats == saved)
            #expect(try #require(merged["transformer.ln_f.weight"]).floats == [Float](repeating: 1.5, count: 64))
        }
    }

    /// A base whose own module is named like a wrapper's inner copy keeps what bias="all" trained there: only
    /// the copies inside a wrapper of a saved module, which the base does not have, are skipped.
    @Test func aBaseTensorNamedLikeAWrapperCopyIsStillMerged() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let base = directory.appending(path: "base.safetensors")
            try AdapterFolder.writeF32(
                [("lin.weight", [4, 4], [Float](repeating: 0.5, count: 16)), ("blk.modules_to_save.bias", [4], [0, 0, 0, 0])],
                to: base)
            try test.store.push(base, to: try Reference(parsing: "tiny/base"))
            let adapter = directory.appending(path: "adapter")
            try FileManager.default.createDirectory(at: adapter, withIntermediateDirectories: true)
            try #"{"peft_type": "LORA", "r": 1, "lora_alpha": 1, "target_modules": ["lin"], "bias": "all"}"#
                .write(to: adapter.appending(path: "adapter_config.json"), atomically: true, encoding: .utf8)
            try AdapterFolder.writeF32(
                [
                    ("base_model.model.lin.lora_A.weight", [1, 4], [1, 1, 1, 1]),
                    ("base_model.model.lin.lora_B.weight", [4, 1], [0.25, 0.25, 0.25, 0.25]),
                    ("base_model.model.blk.modules_to_save.bias", [4], [1, 2, 3, 4]),
                ], to: adapter.appending(path: "adapter_model.safetensors"))
            let result = try push(adapter, as: "tiny/adapter", base: "tiny/base", in: test)
            #expect(!result.skippedFiles.contains { $0.contains("modules_to_save wrapper") })
            let merged = try test.merge(base: "tiny/base", adapters: [("tiny/adapter", 1)], name: "merged")
            #expect(try #require(merged["blk.modules_to_save.bias"]).floats == [1, 2, 3, 4])
        }
    }
}
