import Foundation
import GRDB
import Testing
@testable import LoraStoreCore

/// Several `lorastore` processes on one store at once.
@Suite("Concurrent processes")
struct ProcessConcurrencyTests {
    @Test func twoProcessesPushDifferentAdaptersAtOnce() throws {
        try TemporaryDirectory.with { directory in
            let store = directory.appending(path: "store").path
            #expect(try CommandLineTool.run(["push", Fixtures.url("base_fp32").path, "micro/base:fp32", "--store", store]).status == 0)
            for round in 0..<3 {
                let adapters = ["a_r8_qv", "a2_r8_qkv", "b_r16_all_rslora", "c_r4_patterns"]
                let processes = try adapters.map { adapter in
                    try CommandLineTool.start([
                        "push", Fixtures.url("adapters/\(adapter)").path, "acme/\(adapter.replacingOccurrences(of: "_", with: "-")):r\(round)",
                        "--base", "micro/base:fp32", "--store", store,
                    ])
                }
                for started in processes {
                    let result = CommandLineTool.finish(started)
                    #expect(result.status == 0, "\(result.output)")
                }
            }
            let opened = try Store(root: URL(fileURLWithPath: store))
            #expect(try opened.list(kind: .adapter).count == 12)
            let integrity = try opened.index.database.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
            #expect(integrity == ["ok"])
            let missing = try opened.index.database.read { db in try Digest.fetchAll(db, sql: "SELECT digest FROM blob") }
                .filter { opened.blobs.storedSize(of: $0) == nil }
            #expect(missing.isEmpty)
        }
    }

    @Test func processesPullingOneBuildMaterializeItOnce() throws {
        try TemporaryDirectory.with { directory in
            let store = directory.appending(path: "store").path
            #expect(try CommandLineTool.run(["push", Fixtures.url("base_fp32").path, "micro/base:fp32", "--store", store]).status == 0)
            #expect(try CommandLineTool.run(["push", Fixtures.url("adapters/b_r16_all_rslora").path, "acme/b", "--base", "micro/base:fp32", "--store", store]).status == 0)
            #expect(try CommandLineTool.run(["build", "create", "acme/hot", "--base", "micro/base:fp32", "--adapter", "acme/b@0.8", "--store", store]).status == 0)
            let processes = try (0..<4).map { index in
                try CommandLineTool.start(["pull", "acme/hot", "-o", directory.appending(path: "out-\(index)").path, "--store", store, "--json"])
            }
            var merges = 0
            for (process, pipe) in processes {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                #expect(process.terminationStatus == 0, "\(String(decoding: data, as: UTF8.self))")
                let result = try JSONDecoder().decode(PullResultSummary.self, from: data)
                if result.merged { merges += 1 }
            }
            #expect(merges == 1)
            let reference = try Data(contentsOf: directory.appending(path: "out-0/model.safetensors"))
            for index in 1..<4 {
                #expect(try Data(contentsOf: directory.appending(path: "out-\(index)/model.safetensors")) == reference)
            }
        }
    }

    @Test func errorsExitOneWithAMessageAndNoUsage() throws {
        try TemporaryDirectory.with { directory in
            let store = directory.appending(path: "store").path
            let missing = try CommandLineTool.run(["show", "acme/nothing", "--store", store])
            #expect(missing.status == 1)
            #expect(missing.output.contains("no store at \(store)"))
            #expect(!FileManager.default.fileExists(atPath: store), "a read on a mistyped path creates nothing")
            let bad = try CommandLineTool.run(["push", Fixtures.url("base_fp32").path, "Bad/Name", "--store", store])
            #expect(bad.status != 0)
            #expect(bad.output.contains("lower-case"))

            #expect(try CommandLineTool.run(["push", Fixtures.url("base_fp32").path, "micro/base", "--store", store]).status == 0)
            let notFound = try CommandLineTool.run(["show", "acme/nothing", "--store", store])
            #expect(notFound.status == 1)
            #expect(notFound.output.contains("acme/nothing:latest: not found"))
            let size = try CommandLineTool.run(["cache", "budget", "5XB", "--store", store])
            #expect(size.status == 1)
            #expect(size.output.contains("5XB is not a size"))
            let fraction = try CommandLineTool.run(["cache", "budget", "0.5B", "--store", store])
            #expect(fraction.status != 0 && fraction.output.contains("0.5B is not a size"), "a fraction of a byte is no budget of 0")
            for result in [notFound, size] {
                #expect(!result.output.contains("Usage:"), "a failure while running shows no usage: \(result.output)")
            }
            // With --json, scripts get the error as one JSON object, with the same status.
            let scripted = try CommandLineTool.run(["show", "acme/nothing", "--json", "--store", store])
            #expect(scripted.status == 1)
            let object = try JSONSerialization.jsonObject(with: Data(scripted.output.utf8)) as? [String: Any]
            let error = object?["error"] as? [String: Any]
            #expect((error?["message"] as? String)?.contains("acme/nothing:latest: not found") == true, "\(scripted.output)")
            #expect(error?["exitCode"] as? Int == 1)
        }
    }
}

/// The part of `pull --json` these tests read.
private struct PullResultSummary: Decodable {
    let merged: Bool
}
