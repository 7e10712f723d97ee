import Foundation
import GRDB
import Testing
@testable import LoraStoreCore

@Suite("Builds on quantized bases, fidelity reports and the adapter-loss guard rail")
struct QuantizedBuildTests {
    /// A store with the F32 base, its int8-row copy `micro/base:i8`, and adapter a pushed against the float base.
    private func store(_ directory: URL) throws -> TestStore {
        let test = try TestStore(in: directory).withFP32Base()
        try test.store.quantize(
            try Reference(parsing: "micro/base:fp32"), scheme: .int8Row, to: try Reference(parsing: "micro/base:i8"))
        try test.push("adapters/a_r8_qv", as: "acme/a", base: "micro/base:fp32")
        return test
    }

    /// The adapter weight that makes adapter a's delta `steps` int8-row steps large (root mean square of the
    /// delta over the mean row step of the weights it touches).
    private func weight(forSteps steps: Double) throws -> Double {
        let deltas = try LoadedTensor.file(Fixtures.url("expected/a_r8_qv/lora_delta.safetensors"))
        let base = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
        var squares = 0.0
        var count = 0.0
        var stepSum = 0.0
        var rows = 0.0
        for (name, delta) in deltas {
            for value in delta.floats { squares += Double(value) * Double(value) }
            count += Double(delta.floats.count)
            let weight = try #require(base[name])
            let columns = weight.shape[1]
            let values = weight.floats
            for row in 0 ..< weight.shape[0] {
                stepSum += Double(values[row * columns ..< (row + 1) * columns].map(abs).max() ?? 0) / 127
                rows += 1
            }
        }
        return steps * (stepSum / rows) / (squares / count).squareRoot()
    }

    @discardableResult
    private func create(
        _ test: TestStore, _ name: String, base: String = "micro/base:i8", weight: Double, options: MergeOptions
    ) throws -> Digest {
        try test.store.createBuild(
            base: try Reference(parsing: base), adapters: [(try Reference(parsing: "acme/a"), weight)], options: options,
            tag: try Reference(parsing: name))
    }

    private func state(_ test: TestStore, _ build: Digest) throws -> String? {
        try test.store.index.database.read { db in
            try String.fetchOne(db, sql: "SELECT state FROM build WHERE digest = ?", arguments: [build])
        }
    }

    @Test func aDeltaOfATenthOfAStepIsLostWhenRequantizedAndTheGuardRailRefusesIt() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let weight = try weight(forSteps: 0.1)
            let guarded = try create(test, "acme/small:guarded", weight: weight, options: MergeOptions(quantizedBase: .requantize))
            let destination = directory.appending(path: "guarded")
            do {
                try test.store.pull("acme/small:guarded", to: destination)
                Issue.record("a requantized build that loses its adapter must fail")
            } catch let error as StoreError {
                #expect(error.description.contains("of its adapters when requantized in int8-row"), "\(error)")
                #expect(error.description.contains("separate") && error.description.contains("float output"))
            }
            #expect(!FileManager.default.fileExists(atPath: destination.path))
            #expect(try state(test, guarded) == "recipe", "nothing was stored")
            #expect(try test.store.buildReport(try Reference(parsing: "acme/small:guarded")) == nil)

            try create(
                test, "acme/small:allowed", weight: weight, options: MergeOptions(quantizedBase: .requantize, maxAdapterLoss: 2))
            let pulled = try test.store.pull("acme/small:allowed", to: directory.appending(path: "allowed"))
            let report = try #require(pulled.report)
            #expect(report.tensors.count == 4 && report.application == .merged && report.policy == .requantize)
            let survived = try #require(report.total.merged.survivedShare)
            #expect(survived < 0.1, "under a tenth of the adapter survives requantization: \(survived)")
            let loss = try #require(report.adapterLoss)
            #expect(loss > 1, "the few codes it moves move a whole step: further from the exact merge than the base: \(loss)")
            #expect((report.total.merged.codesMovedShare ?? 1) < 0.01)
            #expect(abs((report.total.onTheFly.survivedShare ?? 0) - 1) < 1e-9, "on the fly keeps all of it")
            #expect(try test.store.buildReport(try Reference(parsing: "acme/small:allowed")) == report)
            let tensors = try LoadedTensor.all(in: directory.appending(path: "allowed"))
            #expect(tensors["model.layers.0.self_attn.q_proj.weight"]?.dtype == .i8)
            #expect(tensors["model.layers.0.self_attn.q_proj.weight.scale"]?.dtype == .f32)
        }
    }

    /// A delta of half a quantization step moves some codes a whole step and leaves the others: on average
    /// much of the adapter survives, yet the output is far from the exact merge. The guard rail measures that
    /// distance, so the default limit refuses the build.
    @Test func aDeltaUnderAStepIsRefusedThoughItSurvivesOnAverage() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let weight = try weight(forSteps: 0.5)
            try create(
                test, "acme/half:measured", weight: weight, options: MergeOptions(quantizedBase: .requantize, maxAdapterLoss: 10))
            let report = try #require(try test.store.pull("acme/half:measured", to: directory.appending(path: "measured")).report)
            let survived = try #require(report.total.merged.survivedShare)
            let error = try #require(report.total.merged.relativeError)
            #expect(survived > 0.5, "much of it survives on average: \(survived)")
            #expect(error > 0.3 && error >= abs(1 - survived), "\(error)")
            #expect(report.adapterLoss == error)

            let guarded = try create(test, "acme/half:guarded", weight: weight, options: MergeOptions(quantizedBase: .requantize))
            #expect {
                try test.store.pull("acme/half:guarded", to: directory.appending(path: "guarded"))
            } throws: { thrown in
                "\(thrown)".contains("loses \(String(format: "%.3g", error))")
            }
            #expect(try state(test, guarded) == "recipe")
        }
    }

    @Test func aDeltaOfTenStepsSurvivesRequantization() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            try create(test, "acme/large:v1", weight: try weight(forSteps: 10), options: MergeOptions(quantizedBase: .requantize))
            let pulled = try test.store.pull("acme/large:v1", to: directory.appending(path: "large"))
            let report = try #require(pulled.report)
            let survived = try #require(report.total.merged.survivedShare)
            #expect(abs(survived - 1) < 0.02, "\(survived)")
            #expect((report.total.merged.codesMovedShare ?? 0) > 0.5)
            #expect((report.total.merged.probeRelativeError ?? 1) < 0.1)
            #expect(report.summary.contains("codes moved"))
            let again = try test.store.pull("acme/large:v1", to: directory.appending(path: "again"))
            #expect(!again.merged && again.report == nil)
            #expect(
                try Data(contentsOf: directory.appending(path: "again/model.safetensors"))
                    == Data(contentsOf: directory.appending(path: "large/model.safetensors")))
        }
    }

    @Test func separateKeepsTheBaseAndTheAdapterAndReportsTheOnTheFlyFigures() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let build = try create(test, "acme/small:separate", weight: 1, options: MergeOptions(quantizedBase: .separate))
            let destination = directory.appending(path: "separate")
            let pulled = try test.store.pull("acme/small:separate", to: destination)
            let report = try #require(pulled.report)
            #expect(report.application == .onTheFly && report.tensors.count == 4)
            #expect(report.applied == report.total.onTheFly)
            #expect(abs((report.applied.survivedShare ?? 0) - 1) < 1e-9)
            #expect(report.adapterLoss.map { $0 < 1e-6 } == true, "\(String(describing: report.adapterLoss))")
            #expect(report.summary.contains("on-the-fly"))
            let base = directory.appending(path: "base")
            try test.store.pull("micro/base:i8", to: base)
            #expect(try LoadedTensor.all(in: destination) == LoadedTensor.all(in: base), "the quantized base as stored")
            let digest = try test.store.resolve(try Reference(parsing: "acme/a")).digest
            let adapter = destination.appending(path: "adapters/1-\(digest.short)")
            for file in ["adapter_config.json", "adapter_model.safetensors"] {
                #expect(
                    try Data(contentsOf: adapter.appending(path: file))
                        == Data(contentsOf: Fixtures.url("adapters/a_r8_qv").appending(path: file)), "\(file) untouched")
            }
            let second = directory.appending(path: "second")
            let again = try test.store.pull("acme/small:separate", to: second)
            #expect(!again.merged)
            #expect(FileManager.default.fileExists(atPath: second.appending(path: "adapters").path))
            #expect(try state(test, build) == "materialized")
            #expect(throws: StoreError.self) {
                try create(test, "acme/small:weighted", weight: 0.5, options: MergeOptions(quantizedBase: .separate))
            }
        }
    }

    @Test func dequantizeWritesFloatsCarryingAllOfTheAdapter() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            try create(
                test, "acme/small:float", weight: try weight(forSteps: 0.1),
                options: MergeOptions(outputType: .f32, quantizedBase: .dequantize))
            let destination = directory.appending(path: "float")
            let report = try #require(try test.store.pull("acme/small:float", to: destination).report)
            #expect(abs((report.total.merged.survivedShare ?? 0) - 1) < 1e-4)
            #expect((report.total.merged.relativeError ?? 1) < 1e-4)
            #expect(report.total.merged.codesMovedShare == nil)
            let tensors = try LoadedTensor.all(in: destination)
            let floats = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
            #expect(Set(tensors.keys) == Set(floats.keys), "logical names, no scales")
            #expect(tensors.values.allSatisfy { $0.dtype == .f32 })
            #expect(tensors["model.layers.0.mlp.up_proj.weight"]?.shape == [172, 64])
        }
    }

    @Test func floatBuildsAreMeasuredAndKeepTheirRecipeDigests() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let options = MergeOptions(outputType: .bf16)
            #expect(!String(decoding: try CanonicalJSON.encode(options), as: UTF8.self).contains("quantizedBase"))
            #expect(!String(decoding: try CanonicalJSON.encode(options), as: UTF8.self).contains("maxAdapterLoss"))
            try test.push("base_bf16", as: "micro/base:bf16")
            try create(test, "acme/tiny:bf16", base: "micro/base:bf16", weight: try weight(forSteps: 0.01), options: options)
            let report = try #require(try test.store.pull("acme/tiny:bf16", to: directory.appending(path: "bf16")).report)
            #expect(report.policy == nil && report.application == .merged)
            #expect((report.total.merged.survivedShare ?? 1) < 0.5, "BF16 rounds a small delta away")
            try create(test, "acme/exact:f32", base: "micro/base:fp32", weight: 1, options: MergeOptions())
            let exact = try #require(try test.store.pull("acme/exact:f32", to: directory.appending(path: "f32")).report)
            #expect(abs((exact.total.merged.survivedShare ?? 0) - 1) < 1e-5)
            #expect((exact.total.merged.relativeError ?? 1) < 1e-5)
            try create(
                test, "acme/tiny:strict", base: "micro/base:bf16", weight: try weight(forSteps: 0.01),
                options: MergeOptions(outputType: .bf16, maxAdapterLoss: 0.0005))
            // The limit is written with its significant digits, not rounded to 0.000.
            #expect { try test.store.pull("acme/tiny:strict", to: directory.appending(path: "strict")) } throws: {
                "\($0)".contains("the limit is 0.0005")
            }
        }
    }

    @Test func anImmediateMergeAppliesThePolicyAndTheGuardRail() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let small = try weight(forSteps: 0.1)
            let refused = directory.appending(path: "refused")
            #expect(throws: StoreError.self) {
                try test.store.merge(
                    base: try Reference(parsing: "micro/base:i8"), adapters: [(try Reference(parsing: "acme/a"), small)],
                    options: MergeOptions(quantizedBase: .requantize), to: refused)
            }
            #expect(!FileManager.default.fileExists(atPath: refused.path))
            let separate = directory.appending(path: "separate")
            try test.store.merge(
                base: try Reference(parsing: "micro/base:i8"), adapters: [(try Reference(parsing: "acme/a"), 1)],
                options: MergeOptions(quantizedBase: .separate), to: separate)
            let adapters = try FileManager.default.contentsOfDirectory(atPath: separate.appending(path: "adapters").path)
            #expect(adapters.count == 1)
        }
    }

    @Test func aQuantizedBaseNeedsAPolicyAndOnlyItTakesOne() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            #expect(throws: StoreError.self) { try create(test, "acme/x:none", weight: 1, options: MergeOptions()) }
            #expect(throws: StoreError.self) {
                try create(test, "acme/x:float", base: "micro/base:fp32", weight: 1, options: MergeOptions(quantizedBase: .requantize))
            }
            #expect(throws: StoreError.self) {
                try create(test, "acme/x:dtype", weight: 1, options: MergeOptions(outputType: .f16, quantizedBase: .separate))
            }
        }
    }
}
