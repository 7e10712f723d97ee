import Foundation
import Testing
@testable import LoraStoreCore

/// Every bad input is refused with an error naming the file, tensor or field, and the store is left
/// exactly as it was: the same blob files with the same bytes, the same index rows.
@Suite("Refused pushes")
struct PushFailureTests {
    /// Pushes `path` to `reference` expecting an error whose message contains every string in `mentions`,
    /// and checks the store did not change.
    private func expectRefused(
        _ test: TestStore, _ path: URL, as reference: String, base: String? = "micro/base:fp32", mentions: [String],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let before = try test.snapshot()
        do {
            try test.store.push(
                path, to: try Reference(parsing: reference),
                options: PushOptions(base: try base.map { try Reference(parsing: $0) }))
            Issue.record("the push of \(path.lastPathComponent) succeeded", sourceLocation: sourceLocation)
        } catch {
            let message = "\(error)"
            for mention in mentions {
                #expect(message.contains(mention), "\"\(message)\" does not mention \(mention)", sourceLocation: sourceLocation)
            }
        }
        #expect(try test.snapshot() == before, "the store changed", sourceLocation: sourceLocation)
    }

    private func scaled(_ name: String, by factor: Float) -> (inout [(name: String, shape: [Int], values: [Float])]) -> Void {
        { tensors in
            for index in tensors.indices where tensors[index].name == name {
                tensors[index].values = tensors[index].values.map { $0 * factor }
            }
        }
    }

    private let keyA = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    private let keyB = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"

    @Test func wrongFactorShape() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let folder = directory.appending(path: "bad")
            try AdapterFolder.copy("a_r8_qv", to: folder) { tensors in
                let index = tensors.firstIndex { $0.name == keyA }!
                tensors[index].shape = [8, 32]
                tensors[index].values = Array(tensors[index].values.prefix(8 * 32))
            }
            try expectRefused(test, folder, as: "acme/bad", mentions: [keyA, "[8, 32]", "adapter_model.safetensors"])
        }
    }

    @Test func notANumberInAFactor() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let folder = directory.appending(path: "nan")
            try AdapterFolder.copy("a_r8_qv", to: folder, editTensors: scaled(keyB, by: .nan))
            try expectRefused(test, folder, as: "acme/nan", mentions: [keyB, "NaN"])
            let infinite = directory.appending(path: "inf")
            try AdapterFolder.copy("a_r8_qv", to: infinite, editTensors: scaled(keyA, by: .infinity))
            try expectRefused(test, infinite, as: "acme/inf", mentions: [keyA, "infinite"])
        }
    }

    @Test func adapterForAnotherBase() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            try expectRefused(
                test, Fixtures.url("adapters/g_gpt2_r8_fan_in_fan_out"), as: "acme/gpt2",
                mentions: ["transformer.h.0.attn.c_attn", "another base", "g_gpt2_r8_fan_in_fan_out/adapter_model.safetensors"])
            try test.push("base_bf16", as: "micro/base:bf16")
            try test.push("gpt2_fp32", as: "micro/gpt2")
            try expectRefused(
                test, Fixtures.url("adapters/a_r8_qv"), as: "acme/llama-on-gpt2", base: "micro/gpt2",
                mentions: ["model.layers.0.self_attn"])
        }
    }

    /// A folder without `adapter_config.json` reads as a base model; given a base to be checked against, it
    /// is refused rather than pushed as a base with the option ignored (an adapter folder missing its
    /// config), alone or in a batch.
    @Test func aBaseGivenForWhatReadsAsABase() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let folder = directory.appending(path: "no-config")
            try AdapterFolder.copy("a_r8_qv", to: folder)
            try FileManager.default.removeItem(at: folder.appending(path: "adapter_config.json"))
            try expectRefused(test, folder, as: "acme/no-config", mentions: ["no-config", "adapter_config.json", "micro/base:fp32"])
            let before = try test.snapshot()
            #expect {
                try test.store.push(
                    [
                        PushItem(path: folder, reference: try Reference(parsing: "acme/no-config")),
                        PushItem(path: Fixtures.url("adapters/a_r8_qv"), reference: try Reference(parsing: "acme/a")),
                    ],
                    options: PushOptions(base: try Reference(parsing: "micro/base:fp32")))
            } throws: { "\($0)".contains("adapter_config.json") }
            #expect(try test.snapshot() == before)
        }
    }

    @Test func rankDisagreesWithConfig() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let folder = directory.appending(path: "rank")
            try AdapterFolder.copy("a_r8_qv", to: folder, editConfig: { $0.replacingOccurrences(of: "\"r\": 8", with: "\"r\": 4") })
            try expectRefused(test, folder, as: "acme/rank", mentions: ["configured rank 4"])
        }
    }

    @Test func unknownKeyAndBadConfigFields() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let stray = directory.appending(path: "stray")
            try AdapterFolder.copy("a_r8_qv", to: stray) { tensors in
                tensors.append(("base_model.model.model.norm.weight", [64], [Float](repeating: 1, count: 64)))
            }
            try expectRefused(test, stray, as: "acme/stray", mentions: ["base_model.model.model.norm.weight", "modules_to_save"])
            let config = directory.appending(path: "config")
            try AdapterFolder.copy("a_r8_qv", to: config, editConfig: { $0.replacingOccurrences(of: "\"r\": 8", with: "\"r\": \"eight\"") })
            try expectRefused(test, config, as: "acme/config", mentions: ["adapter_config.json", "\"r\""])
            let notJSON = directory.appending(path: "json")
            try AdapterFolder.copy("a_r8_qv", to: notJSON, editConfig: { String($0.dropLast(3)) })
            try expectRefused(test, notJSON, as: "acme/json", mentions: ["adapter_config.json", "JSON"])
        }
    }

    /// Values a config may hold in JSON but that no adapter can have: each is refused at push, naming the
    /// field, where they used to trap (a rank of 1e20 converted to `Int`) or merge differently from PEFT.
    @Test(arguments: [
        (#""rank_pattern": {}"#, #""rank_pattern": {"q_proj": 1e20}"#, "rank_pattern"),
        (#""rank_pattern": {}"#, #""rank_pattern": {"q_proj": 4.5}"#, "rank_pattern"),
        (#""rank_pattern": {}"#, #""rank_pattern": {"v_proj": 0}"#, "rank_pattern"),
        (#""alpha_pattern": {}"#, #""alpha_pattern": {"q_proj": 1e400}"#, "alpha_pattern"),
        (#""alpha_pattern": {}"#, #""alpha_pattern": {"q_proj": 4, "q_proj": 8}"#, "alpha_pattern"),
        (#""lora_alpha": 16"#, #""lora_alpha": 1e400"#, "lora_alpha"),
        (#""lora_alpha": 16"#, #""lora_alpha": 16, "lora_alpha": 32"#, "lora_alpha"),
        // ICU's named group, which Python's re refuses (PEFT's own syntax, `(?P<name>…)`, is accepted).
        (#""exclude_modules": null"#, #""exclude_modules": "(?<name>k_proj)""#, "exclude_modules"),
        // A backreference: Python accepts it, lorastore does not match it.
        (#""exclude_modules": null"#, #""exclude_modules": "(k)_proj\\1""#, "exclude_modules"),
        (#""layers_pattern": null"#, #""layers_pattern": ["layers("]"#, "layers_pattern"),
        // PEFT's ParamWrapper, which lorastore does not merge: refused rather than merged without them.
        (#""target_parameters": null"#, #""target_parameters": ["q_proj.weight"]"#, "target_parameters"),
    ])
    func configValuesNoAdapterCanHave(field: String, replacement: String, named: String) throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let folder = directory.appending(path: "config")
            try AdapterFolder.copy("a_r8_qv", to: folder, editConfig: {
                #expect($0.contains(field))
                return $0.replacingOccurrences(of: field, with: replacement)
            })
            try expectRefused(test, folder, as: "acme/config", mentions: ["adapter_config.json", "\"\(named)\""])
        }
    }

    /// Models with nothing in them, a configuration nothing can load, and a file that is not a regular
    /// one (a pipe would be read forever) are refused, naming the file.
    @Test func emptyModelsUnreadableConfigsAndPipes() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            var header = Data()
            withUnsafeBytes(of: UInt64(2).littleEndian) { header.append(contentsOf: $0) }
            header.append(contentsOf: Array("{}".utf8))
            let empty = directory.appending(path: "empty.safetensors")
            try header.write(to: empty)
            try expectRefused(test, empty, as: "micro/empty", base: nil, mentions: ["empty.safetensors", "holds no tensors"])
            let emptyAdapter = directory.appending(path: "empty-adapter")
            try AdapterFolder.copy("a_r8_qv", to: emptyAdapter)
            try header.write(to: emptyAdapter.appending(path: "adapter_model.safetensors"))
            try expectRefused(test, emptyAdapter, as: "acme/empty", mentions: ["adapter_model.safetensors", "holds no tensors"])
            let weightless = directory.appending(path: "weightless")
            try FileManager.default.createDirectory(at: weightless, withIntermediateDirectories: true)
            try Data("{}".utf8).write(to: weightless.appending(path: "config.json"))
            try expectRefused(test, weightless, as: "micro/weightless", base: nil, mentions: ["weightless", "no .safetensors files"])
            let badConfig = directory.appending(path: "bad-config")
            try FileManager.default.copyItem(at: Fixtures.url("base_fp32"), to: badConfig)
            try Data("{\"model_type\": ".utf8).write(to: badConfig.appending(path: "config.json"))
            try expectRefused(test, badConfig, as: "micro/bad", base: nil, mentions: ["bad-config/config.json", "not valid JSON"])
            let pipe = directory.appending(path: "pipe.safetensors")
            #expect(mkfifo(pipe.path, 0o600) == 0)
            try expectRefused(test, pipe, as: "micro/pipe", base: nil, mentions: ["pipe.safetensors", "not a regular file"])
        }
    }

    @Test func adaptersPEFTDoesNotMergeIntoTheOriginalBase() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let pissa = directory.appending(path: "pissa")
            try AdapterFolder.copy("a_r8_qv", to: pissa, editConfig: {
                $0.replacingOccurrences(of: "\"init_lora_weights\": true", with: "\"init_lora_weights\": \"pissa_niter_4\"")
            })
            try expectRefused(test, pissa, as: "acme/pissa", mentions: ["adapter_config.json", "init_lora_weights", "pissa_niter_4"])
            let activated = directory.appending(path: "alora")
            try AdapterFolder.copy("a_r8_qv", to: activated, editConfig: {
                $0.replacingOccurrences(of: "\"alora_invocation_tokens\": null", with: "\"alora_invocation_tokens\": [5, 6]")
            })
            try expectRefused(test, activated, as: "acme/alora", mentions: ["adapter_config.json", "alora_invocation_tokens"])
            let gaussian = directory.appending(path: "gaussian")
            try AdapterFolder.copy("a_r8_qv", to: gaussian, editConfig: {
                $0.replacingOccurrences(of: "\"init_lora_weights\": true", with: "\"init_lora_weights\": \"gaussian\"")
            })
            #expect(try test.store.push(gaussian, to: try Reference(parsing: "acme/gaussian"), options: PushOptions(base: try Reference(parsing: "micro/base:fp32"))).kind == .adapter,
                    "an initialization that leaves the base alone merges as usual")
        }
    }

    @Test func malformedAndTruncatedModelFiles() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let original = try Data(contentsOf: Fixtures.url("base_fp32/model.safetensors"))
            let truncated = directory.appending(path: "truncated")
            try FileManager.default.createDirectory(at: truncated, withIntermediateDirectories: true)
            try original.prefix(original.count - 100).write(to: truncated.appending(path: "model.safetensors"))
            try expectRefused(test, truncated, as: "micro/truncated", base: nil, mentions: ["truncated/model.safetensors"])
            let garbage = directory.appending(path: "garbage.safetensors")
            try Data([1, 2, 3]).write(to: garbage)
            try expectRefused(test, garbage, as: "micro/garbage", base: nil, mentions: ["garbage.safetensors", "too short"])
        }
    }

    @Test func infiniteValueInABase() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let url = directory.appending(path: "inf.safetensors")
            try AdapterFolder.writeF32([("model.norm.weight", [4], [1, 2, .infinity, 4])], to: url)
            try expectRefused(test, url, as: "micro/inf", base: nil, mentions: ["model.norm.weight", "infinite"])
        }
    }

    @Test func nonFiniteComplexAndScaleValues() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let complex = directory.appending(path: "complex.safetensors")
            let infinity = withUnsafeBytes(of: Float.infinity.bitPattern.littleEndian, Array.init)
            let header = "{" + RawSafetensors.entry("rotary.freqs", "C64", [1], 0, 8) + "}"
            try Data(RawSafetensors.bytes(declaredLength: UInt64(header.utf8.count), rest: Array(header.utf8) + [0, 0, 0, 0] + infinity))
                .write(to: complex)
            try expectRefused(test, complex, as: "micro/complex", base: nil, mentions: ["rotary.freqs", "infinite"])
            let scales = directory.appending(path: "scales.safetensors")
            let scaleHeader = "{" + RawSafetensors.entry("w.scales", "F8_E8M0", [2], 0, 2) + "}"
            try Data(RawSafetensors.bytes(declaredLength: UInt64(scaleHeader.utf8.count), rest: Array(scaleHeader.utf8) + [0x7F, 0xFF]))
                .write(to: scales)
            try expectRefused(test, scales, as: "micro/scales", base: nil, mentions: ["w.scales", "NaN"])
        }
    }

    /// A copy of the sharded base fixture whose index (read as text) `edit` changes.
    private func shardedCopy(in directory: URL, editIndex edit: (String) -> String) throws -> URL {
        let folder = directory.appending(path: "sharded-\(UUID().uuidString.prefix(8))")
        try FileManager.default.copyItem(at: Fixtures.url("base_fp32_sharded"), to: folder)
        let indexURL = folder.appending(path: "model.safetensors.index.json")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: indexURL.path)
        try edit(try String(contentsOf: indexURL, encoding: .utf8)).write(to: indexURL, atomically: false, encoding: .utf8)
        return folder
    }

    @Test func emptyOrPartialShardIndex() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let empty = try shardedCopy(in: directory) { text in
                let start = text.range(of: "\"weight_map\"")!.lowerBound
                return String(text[..<start]) + "\"weight_map\": {}\n}\n"
            }
            try expectRefused(test, empty, as: "micro/empty", base: nil, mentions: ["model.safetensors.index.json", "weight_map lists no tensors"])
            let partial = try shardedCopy(in: directory) { text in
                text.split(separator: "\n", omittingEmptySubsequences: false)
                    .filter { !$0.contains("model-00002-of-00003") && !$0.contains("model-00003-of-00003") }
                    .joined(separator: "\n")
                    .replacingOccurrences(of: ",\n  }", with: "\n  }")
            }
            try expectRefused(
                test, partial, as: "micro/partial", base: nil,
                mentions: ["metadata.total_size", "model-00002-of-00003.safetensors", "incomplete"])
        }
    }

    @Test func hiddenShardName() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let folder = try shardedCopy(in: directory) { $0.replacingOccurrences(of: "model-00001-of-00003", with: ".model-00001-of-00003") }
            try FileManager.default.moveItem(
                at: folder.appending(path: "model-00001-of-00003.safetensors"),
                to: folder.appending(path: ".model-00001-of-00003.safetensors"))
            try expectRefused(test, folder, as: "micro/hidden", base: nil, mentions: [".model-00001-of-00003.safetensors", "hidden"])
        }
    }

    @Test func aFileRewrittenDuringThePushStoresNothing() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let folder = directory.appending(path: "base")
            try FileManager.default.copyItem(at: Fixtures.url("base_fp32"), to: folder)
            let weights = folder.appending(path: "model.safetensors")
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: weights.path)
            let source = try PushSource.inspect(folder, kind: nil)
            let before = try test.snapshot()
            // Staged as hashed (as a push does), or not at all.
            let staging = EarlyStaging(blobs: test.store.blobs)
            let prepared = try test.store.prepare(source, repository: "micro/base", options: PushOptions(), staging: staging)
            let push = try ValidatedPush(prepared, repository: "micro/base", tag: "latest", skipped: [])
            // Another process writes the file in place: same size, other bytes, after hashing.
            let handle = try FileHandle(forUpdating: weights)
            try handle.seek(toOffset: try handle.seekToEnd() - 8)
            try handle.write(contentsOf: Data(repeating: 0x3F, count: 8))
            try handle.close()
            for prestaged in [staging.take(), [:]] {
                #expect {
                    try test.store.withMaintenanceLock(.shared) {
                        try test.store.store([push], progress: nil, prestaged: prestaged)
                    }
                } throws: { error in
                    "\(error)".contains(weights.path) && "\(error)".contains("changed while it was being pushed")
                }
                #expect(try test.snapshot() == before)
            }
        }
    }

    /// A base whose last tensor holds a NaN: the tensors hashed before it were already written to temporary
    /// files (``EarlyStaging``), and none of them stays.
    @Test func notANumberInTheLastTensorOfALargeBase() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let folder = directory.appending(path: "large-base")
            try SyntheticModel.sized(bytes: 8 << 20, dtype: .f32, seed: 6).write(to: folder)
            let weights = folder.appending(path: "model.safetensors")
            let file = try SafetensorsFile(contentsOf: weights)
            let last = try #require(file.tensors.last)
            let handle = try FileHandle(forUpdating: weights)
            try handle.seek(toOffset: UInt64(file.dataOffset + last.dataRange.lowerBound))
            try handle.write(contentsOf: withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { Data($0) })
            try handle.close()
            try expectRefused(test, folder, as: "acme/large", base: nil, mentions: [last.name, "NaN"])
        }
    }

    /// A shard whose only tensor repeats the bytes of a tensor in the next shard: its blob may be staged from
    /// either file, so a change to either refuses the push, and a push of the unchanged folder leaves no
    /// temporary file.
    @Test func aShardWhoseTensorsAllRepeatAnotherShardIsCheckedToo() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            let folder = directory.appending(path: "twin-shards")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Fixtures.url("base_fp32/config.json"), to: folder.appending(path: "config.json"))
            let shared = (0..<64).map { Float($0) / 64 }
            try AdapterFolder.writeF32([("lm_head.weight", [8, 8], shared)], to: folder.appending(path: "model-00001-of-00002.safetensors"))
            try AdapterFolder.writeF32(
                [("embed.weight", [8, 8], shared), ("norm.weight", [8], Array(repeating: 1, count: 8))],
                to: folder.appending(path: "model-00002-of-00002.safetensors"))
            let index = """
                {"metadata": {"total_size": 544}, "weight_map": {"lm_head.weight": "model-00001-of-00002.safetensors",
                "embed.weight": "model-00002-of-00002.safetensors", "norm.weight": "model-00002-of-00002.safetensors"}}
                """
            try index.write(to: folder.appending(path: "model.safetensors.index.json"), atomically: true, encoding: .utf8)
            let before = try test.snapshot()
            for shard in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] {
                let staging = EarlyStaging(blobs: test.store.blobs)
                let prepared = try test.store.prepare(
                    try PushSource.inspect(folder, kind: nil), repository: "acme/twins", options: PushOptions(), staging: staging)
                let push = try ValidatedPush(prepared, repository: "acme/twins", tag: "latest", skipped: [])
                // Another process rewrites the shard in place after hashing: same size, the same bytes even,
                // but written again.
                let path = folder.appending(path: shard)
                try Data(contentsOf: path).write(to: path)
                #expect {
                    try test.store.withMaintenanceLock(.shared) {
                        try test.store.store([push], progress: nil, prestaged: staging.take())
                    }
                } throws: { error in
                    "\(error)".contains(shard) && "\(error)".contains("changed while it was being pushed")
                }
                #expect(try test.snapshot() == before, "\(shard)")
            }
            try test.store.push(folder, to: try Reference(parsing: "acme/twins"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: test.store.blobs.temporaryDirectory.path).isEmpty)
        }
    }

    @Test func shardIndexThatDisagreesWithTheShards() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let folder = directory.appending(path: "sharded")
            try FileManager.default.copyItem(at: Fixtures.url("base_fp32_sharded"), to: folder)
            let indexURL = folder.appending(path: "model.safetensors.index.json")
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: folder.path)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: indexURL.path)
            let text = try String(contentsOf: indexURL, encoding: .utf8)
            try text.replacingOccurrences(of: "\"lm_head.weight\": \"model-00003-of-00003.safetensors\"", with: "\"lm_head.weight\": \"model-00001-of-00003.safetensors\"")
                .write(to: indexURL, atomically: false, encoding: .utf8)
            try expectRefused(test, folder, as: "micro/sharded", base: nil, mentions: ["lm_head.weight", "model-00001-of-00003.safetensors"])
        }
    }

    @Test func badNamesAndTags() throws {
        for text in ["Acme/x", "acme//x", "../x", "acme/x:", "acme/x:.hidden", "acme/x@sha256:1234", "/acme", "acme/x:a/b", "a..b", "sha256:deadbeef", "sha256:\(String(repeating: "ab", count: 31))a"] {
            #expect(throws: ReferenceError.self, "\(text)") { try Reference(parsing: text) }
        }
        let digest = String(repeating: "ab", count: 32)
        #expect(try Reference(parsing: "acme/support-bot").tag == "latest")
        #expect(try Reference(parsing: "acme/support_bot.v2:2024-01").tag == "2024-01")
        #expect(try Reference(parsing: "acme/x@sha256:\(digest)").digest?.hex == digest)
        #expect(try Reference(parsing: "sha256:\(digest)").repository == nil)
    }
}
