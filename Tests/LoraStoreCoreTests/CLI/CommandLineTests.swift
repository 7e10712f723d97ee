import Foundation
import Testing
@testable import LoraStoreCore

/// Commands as a user runs them: arguments, exit status and what they print.
@Suite("Command line")
struct CommandLineTests {
    /// Runs `lorastore arguments... --store STORE`.
    private func lorastore(_ arguments: [String], store: URL) throws -> (status: Int32, output: String) {
        try CommandLineTool.run(arguments + ["--store", store.path])
    }

    /// `merge` on a quantized base takes the same policy options as `build create` and `pull`: without one
    /// it says to choose, with one it merges.
    @Test func mergeOnAQuantizedBaseTakesAPolicy() throws {
        try TemporaryDirectory.with { directory in
            let store = directory.appending(path: "store")
            #expect(try lorastore(["push", Fixtures.url("base_fp32").path, "micro/base:fp32"], store: store).status == 0)
            #expect(try lorastore(["quantize", "micro/base:fp32", "--scheme", "int8-row", "--tag", "micro/base:i8"], store: store).status == 0)
            #expect(
                try lorastore(
                    ["push", Fixtures.url("adapters/a_r8_qv").path, "acme/a", "--base", "micro/base:fp32"], store: store
                ).status == 0)

            let refused = try lorastore(
                ["merge", "--base", "micro/base:i8", "--adapter", "acme/a", "-o", directory.appending(path: "none").path],
                store: store)
            #expect(refused.status == 1 && refused.output.contains("requantize, dequantize or separate"), "\(refused.output)")

            let output = directory.appending(path: "merged")
            let merged = try lorastore(
                ["merge", "--base", "micro/base:i8", "--adapter", "acme/a", "--policy", "dequantize", "-o", output.path],
                store: store)
            #expect(merged.status == 0, "\(merged.output)")
            let weight = try #require(try LoadedTensor.all(in: output)["model.layers.0.self_attn.q_proj.weight"])
            #expect(weight.dtype == .f32 && weight.shape == [64, 64])
        }
    }

    /// `build create`, `merge` and an ad-hoc `pull` refuse an adapter pushed for another model of the same
    /// shapes, saying how to go on, and take `--allow-other-base`; a registry's ad-hoc pull does not.
    @Test func anotherModelsAdapterNeedsAllowOtherBase() throws {
        try TemporaryDirectory.with { directory in
            let store = directory.appending(path: "store")
            let tuned = directory.appending(path: "tuned")
            try Fixtures.copy("base_fp32", to: tuned, flippingFirstBitOf: "model.norm.weight")
            #expect(try lorastore(["push", Fixtures.url("base_fp32").path, "micro/base:fp32"], store: store).status == 0)
            #expect(try lorastore(["push", tuned.path, "micro/tuned"], store: store).status == 0)
            #expect(
                try lorastore(
                    ["push", Fixtures.url("adapters/a_r8_qv").path, "acme/a", "--base", "micro/base:fp32"], store: store
                ).status == 0)
            // Other weights each, so that no command finds the recipe another one recorded with permission.
            let commands = [
                ["build", "create", "acme/t", "--base", "micro/tuned", "--adapter", "acme/a@0.5"],
                ["merge", "--base", "micro/tuned", "--adapter", "acme/a", "-o", directory.appending(path: "merged").path],
                ["pull", "micro/tuned+acme/a@0.7", "-o", directory.appending(path: "pulled").path],
            ]
            for command in commands {
                let refused = try lorastore(command, store: store)
                #expect(
                    refused.status == 1 && refused.output.contains("was pushed for base micro/base:fp32")
                        && refused.output.contains("--allow-other-base"), "\(command): \(refused.output)")
                let allowed = try lorastore(command + ["--allow-other-base"], store: store)
                #expect(allowed.status == 0, "\(command): \(allowed.output)")
            }
            let remote = try lorastore(
                ["pull", "micro/tuned+acme/a", "-o", directory.appending(path: "remote").path, "--allow-other-base",
                 "--remote", "http://127.0.0.1:9"], store: store)
            #expect(remote.status != 0 && remote.output.contains("build create --allow-other-base"), "\(remote.output)")
        }
    }

    /// `verify` exits 0 on a sound store and 1 on a fault, naming the blob; a leftover file is listed but is
    /// no fault; `--repair` fixes what it can.
    @Test func verifyExitsNonZeroOnAFaultAndNamesIt() throws {
        try TemporaryDirectory.with { directory in
            let store = directory.appending(path: "store")
            #expect(try lorastore(["push", Fixtures.url("base_fp32").path, "micro/base:fp32"], store: store).status == 0)
            #expect(try lorastore(["verify"], store: store).status == 0)
            let leftoverPath = store.appending(path: "tmp/left-behind-earlier")
            try Data([1]).write(to: leftoverPath)
            let leftover = try lorastore(["verify", "--deep"], store: store)
            #expect(leftover.status == 0 && leftover.output.contains("no faults"), "\(leftover.output)")
            #expect(leftover.output.contains("1 leftover file(s)") && leftover.output.contains("left-behind-earlier"), "\(leftover.output)")
            try FileManager.default.removeItem(at: leftoverPath)
            let opened = try Store(root: store)
            let digest = try #require(try opened.resolve(try Reference(parsing: "micro/base:fp32")).manifest.tensors.first?.digest)
            let path = opened.blobs.path(of: digest)
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes[bytes.startIndex] ^= 1
            try bytes.write(to: URL(fileURLWithPath: path))

            #expect(try lorastore(["verify"], store: store).status == 0, "same size: only a deep check sees it")
            let deep = try lorastore(["verify", "--deep"], store: store)
            #expect(deep.status == 1 && deep.output.contains(digest.hex), "\(deep.output)")
            let stray = store.appending(path: "tmp/left-behind")
            try Data([1]).write(to: stray)
            let repaired = try lorastore(["verify", "--repair"], store: store)
            #expect(repaired.status == 0 && repaired.output.contains("repaired"), "\(repaired.output)")
            #expect(!FileManager.default.fileExists(atPath: stray.path))

            // An index that cannot be opened is reported as a fault, in the report's shape for scripts too.
            try Data(repeating: 0x41, count: 8192).write(to: store.appending(path: "index.sqlite"))
            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: store.path + "/index.sqlite" + suffix) }
            let damaged = try lorastore(["verify", "--json"], store: store)
            #expect(damaged.status == 1, "\(damaged.output)")
            let report = try JSONDecoder().decode(VerifyReport.self, from: Data(damaged.output.utf8))
            #expect(report.faults.map(\.kind) == [.damagedIndex], "\(damaged.output)")
        }
    }

    /// `quantize` lists the first five weights it kept unquantized and counts the rest, which `--json` lists:
    /// a model whose every layer keeps the same weight would otherwise bury the summary.
    @Test func quantizeListsFiveKeptWeightsAndCountsTheRest() throws {
        try TemporaryDirectory.with { directory in
            let store = directory.appending(path: "store")
            let base = directory.appending(path: "base.safetensors")
            // Rows of 40 values are not whole q8_0 blocks of 32: those weights are kept; one weight is quantized.
            try AdapterFolder.writeF32(
                (0..<7).map { ("model.layers.\($0).self_attn.q_proj.weight", [32, 40], [Float](repeating: 0.5, count: 1280)) }
                    + [("model.layers.0.self_attn.k_proj.weight", [32, 32], [Float](repeating: 0.25, count: 1024))],
                to: base)
            #expect(try lorastore(["push", base.path, "q/base"], store: store).status == 0)
            let text = try lorastore(["quantize", "q/base", "--scheme", "q8_0", "-t", "q/base:q8"], store: store)
            #expect(text.status == 0)
            let listed = text.output.split(separator: "\n").filter { $0.hasPrefix("  kept model.") }
            #expect(listed.count == 5 && text.output.contains("kept 2 more weight(s)"), "\(text.output)")
            let json = try lorastore(["quantize", "q/base", "--scheme", "q8_0", "-t", "q/base:q8-again", "--json"], store: store)
            let kept = ((try self.json(json.output) as? [String: Any])?["quantization"] as? [String: Any])?["kept"] as? [Any]
            #expect(kept?.count == 7)
        }
    }

    /// The JSON object or array a `--json` command printed.
    private func json(_ output: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(output.utf8))
    }

    /// The commands of daily use, each run once as a script would: tag, lineage, stats, the cache, build
    /// reports and tokens, with the store found through `$LORASTORE_HOME`.
    @Test func everydayCommandsAnswerInJSON() throws {
        try TemporaryDirectory.with { directory in
            let store = directory.appending(path: "store")
            func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
                try CommandLineTool.run(arguments, environment: ["LORASTORE_HOME": store.path])
            }
            #expect(try run(["push", Fixtures.url("base_fp32").path, "micro/base:fp32"]).status == 0)
            #expect(try run(["push", Fixtures.url("adapters/a_r8_qv").path, "acme/a", "--base", "micro/base:fp32"]).status == 0)
            #expect(try run(["build", "create", "acme/m", "--base", "micro/base:fp32", "--adapter", "acme/a@0.5"]).status == 0)
            #expect(try run(["tag", "acme/a", "acme/a:stable"]).status == 0)

            let lineage = try #require(try json(run(["lineage", "acme/a:stable", "--json"]).output) as? [String: Any])
            let derived = try #require(lineage["derivedBuilds"] as? [[String: Any]])
            #expect(derived.map { $0["tags"] as? [String] } == [["acme/m:latest"]])
            // For people, the subject is headed by the tag it was asked by, not its first tag.
            let lineageText = try run(["lineage", "acme/a:stable"]).output.split(separator: "\n")
            #expect(lineageText.first?.hasPrefix("adapter acme/a:stable (") == true, "\(lineageText)")
            // A build or base with several tags shows them all.
            #expect(try run(["tag", "acme/m", "acme/m:v2"]).status == 0)
            #expect(lineageText.contains { $0.contains("base") && $0.contains("micro/base:fp32 (") }, "\(lineageText)")
            let built = try run(["lineage", "acme/a:stable"]).output
            #expect(built.contains("build    acme/m:latest, acme/m:v2 ("), "\(built)")

            // target_modules as the config writes it: a list of names.
            let shown = try #require(try json(run(["show", "acme/a", "--json"]).output) as? [String: Any])
            #expect((shown["adapter"] as? [String: Any])?["targetModules"] as? [String] == ["q_proj", "v_proj"])
            let dequantized = try run(["pull", "acme/m", "--dequantize", "F16", "-o", directory.appending(path: "dq").path])
            #expect(dequantized.status == 1 && dequantized.output.contains("acme/m: is a build"), "\(dequantized.output)")

            let stats = try #require(try json(run(["stats", "--json"]).output) as? [String: Any])
            #expect((stats["entries"] as? [Any])?.count == 3)

            let early = try run(["build", "report", "acme/m"])
            #expect(early.status == 1 && early.output.contains("not materialized yet"), "\(early.output)")
            #expect(try run(["pull", "acme/m", "-o", directory.appending(path: "m").path]).status == 0)
            let report = try run(["build", "report", "acme/m"])
            #expect(report.status == 0 && report.output.contains("fidelity"), "\(report.output)")
            // The same recipe under another name is that build, already merged.
            let again = try run(["build", "create", "acme/m-again", "--base", "micro/base:fp32", "--adapter", "acme/a@0.5"])
            #expect(again.status == 0 && again.output.contains("already merged"), "\(again.output)")

            #expect(try run(["cache", "pin", "acme/m"]).status == 0)
            let pinned = try #require(try json(run(["cache", "status", "--json"]).output) as? [String: Any])
            #expect(((pinned["builds"] as? [[String: Any]])?.first?["pinned"] as? Bool) == true)
            #expect(try run(["cache", "unpin", "acme/m"]).status == 0)
            let unpinned = try #require(try json(run(["cache", "status", "--json"]).output) as? [String: Any])
            #expect(((unpinned["builds"] as? [[String: Any]])?.first?["pinned"] as? Bool) == false)

            let created = try #require(try json(run(["token", "create", "--scope", "read", "--json"]).output) as? [String: Any])
            let id = try #require((created["token"] as? [String: Any])?["id"] as? String)
            #expect(try run(["token", "revoke", id]).status == 0)
            let tokens = try #require(try json(run(["token", "ls", "--json"]).output) as? [[String: Any]])
            #expect(tokens.count == 1 && tokens[0]["id"] as? String == id && !(tokens[0]["revokedAt"] is NSNull))
            let unknown = try run(["token", "revoke", "nope"])
            #expect(unknown.status == 1 && unknown.output.contains("nope"), "\(unknown.output)")
            // A weight beyond Int's range used to trap when `show` printed it as an integer.
            #expect(try run(["build", "create", "acme/huge", "--base", "micro/base:fp32", "--adapter", "acme/a@1e19"]).status == 0)
            let huge = try run(["show", "acme/huge"])
            #expect(huge.status == 0 && huge.output.contains("1e+19"), "\(huge.output)")
            // One beyond F32's range is refused when the build is created, not at its first pull.
            let beyond = try run(["build", "create", "acme/beyond", "--base", "micro/base:fp32", "--adapter", "acme/a@1e40"])
            #expect(beyond.status == 1 && beyond.output.contains("not a finite F32 number"), "\(beyond.output)")
        }
    }
}
