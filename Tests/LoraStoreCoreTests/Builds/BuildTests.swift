import Foundation
import GRDB
import Synchronization
import Testing
@testable import LoraStoreCore

@Suite("Builds, pulls and the cache")
struct BuildTests {
    /// A store with the F32 base and adapters a, b and d.
    private func store(_ directory: URL) throws -> TestStore {
        let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
        try test.push("adapters/b_r16_all_rslora", as: "acme/b", base: "micro/base:fp32")
        try test.push("adapters/d_r8_qv_lmhead_saved", as: "acme/d", base: "micro/base:fp32")
        return test
    }

    @discardableResult
    private func create(_ test: TestStore, _ name: String, _ adapters: [(String, Double)]) throws -> Digest {
        try test.store.createBuild(
            base: try Reference(parsing: "micro/base:fp32"),
            adapters: try adapters.map { (try Reference(parsing: $0.0), $0.1) }, tag: try Reference(parsing: name))
    }

    @discardableResult
    private func pull(_ test: TestStore, _ name: String, into folder: String) throws -> PullResult {
        try test.store.pull(name, to: test.directory.appending(path: folder))
    }

    private func materializations(_ test: TestStore, _ build: Digest) throws -> Int {
        try test.store.index.database.read { db in
            try Int.fetchOne(db, sql: "SELECT materializations FROM build WHERE digest = ?", arguments: [build]) ?? -1
        }
    }

    @Test func pulledBuildMatchesPEFTAndTheSecondPullMergesNothing() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let build = try create(test, "acme/support:v1", [("acme/d", 1)])
            #expect(try create(test, "acme/support:v1", [("acme/d", 1)]) == build, "the same recipe is the same build")
            #expect(try materializations(test, build) == 0, "creating a build merges nothing")
            let first = try pull(test, "acme/support:v1", into: "first")
            #expect(first.merged)
            let pulled = try LoadedTensor.all(in: directory.appending(path: "first"))
            let expected = try LoadedTensor.file(Fixtures.url("expected/d_r8_qv_lmhead_saved/merged_touched.safetensors"))
            let base = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
            for (name, tensor) in base {
                if let touched = expected[name] {
                    let merged = try #require(pulled[name], "\(name)")
                    #expect(maxDifference(merged, touched) <= 1e-6, "\(name)")
                } else {
                    #expect(pulled[name] == tensor, "\(name)")
                }
            }
            let second = try pull(test, "acme/support:v1", into: "second")
            #expect(!second.merged)
            #expect(try materializations(test, build) == 1)
            let firstBytes = try Data(contentsOf: directory.appending(path: "first/model.safetensors"))
            #expect(try Data(contentsOf: directory.appending(path: "second/model.safetensors")) == firstBytes)
            #expect(second.files["model.safetensors"] == Digest(of: firstBytes))
            let metadata = try SafetensorsFile(contentsOf: directory.appending(path: "second/model.safetensors")).metadata
            #expect(metadata?["lorastore.build"] == build.description)
            #expect(metadata?["lorastore.base"] == (try test.store.resolve(try Reference(parsing: "micro/base:fp32"))).digest.description)
            #expect(FileManager.default.fileExists(atPath: directory.appending(path: "second/config.json").path))
        }
    }

    @Test func materializationStoresOnlyChangedTensors() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let build = try create(test, "acme/qv", [("acme/a", 1)])
            try pull(test, "acme/qv", into: "out")
            let held = try test.store.index.database.read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM build_blob WHERE build_digest = ?", arguments: [build])
            }
            #expect(held == 4, "q_proj and v_proj of two layers")
            let status = try test.store.cacheStatus()
            let deltas = try LoadedTensor.file(Fixtures.url("expected/a_r8_qv/merged_touched.safetensors"))
            #expect(status.usage == deltas.values.reduce(0) { $0 + $1.bytes.count })
        }
    }

    @Test func evictsTheLeastRecentlyPulledAndRebuildsIdentically() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let first = try create(test, "acme/one", [("acme/a", 1)])
            let second = try create(test, "acme/two", [("acme/a", 0.5)])
            let third = try create(test, "acme/three", [("acme/a", 0.25)])
            try pull(test, "acme/one", into: "one")
            let oneBuild = try test.store.cacheStatus().usage
            try test.store.setCacheBudget(oneBuild)
            #expect(try pull(test, "acme/two", into: "two").evicted == [first])
            #expect(try pull(test, "acme/three", into: "three").evicted == [second])
            let status = try test.store.cacheStatus()
            #expect(status.usage <= oneBuild)
            #expect(status.builds.first { $0.digest == third }?.state == .materialized)
            let rebuilt = try pull(test, "acme/one", into: "one-again")
            #expect(rebuilt.merged && rebuilt.rebuilt)
            #expect(try materializations(test, first) == 2)
            #expect(
                try Data(contentsOf: directory.appending(path: "one-again/model.safetensors"))
                    == Data(contentsOf: directory.appending(path: "one/model.safetensors")))
        }
    }

    @Test func pinnedBuildsSurvive() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let pinned = try create(test, "acme/pinned", [("acme/a", 1)])
            try create(test, "acme/other", [("acme/a", -1)])
            try test.store.setPinned(try Reference(parsing: "acme/pinned"), true)
            try pull(test, "acme/pinned", into: "pinned")
            try test.store.setCacheBudget(0)
            try pull(test, "acme/other", into: "other")
            let status = try test.store.cacheStatus()
            #expect(status.builds.first { $0.digest == pinned }?.state == .materialized)
            #expect(status.builds.filter { $0.state == .materialized }.count == 1)
        }
    }

    @Test func concurrentPullsMaterializeOnce() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let build = try create(test, "acme/hot", [("acme/b", 1), ("acme/a", 0.5)])
            let root = test.store.root
            let failures = Mutex<[String]>([])
            let group = DispatchGroup()
            for index in 0..<8 {
                DispatchQueue.global().async(group: group) {
                    do {
                        try Store(root: root).pull("acme/hot", to: directory.appending(path: "pull-\(index)"))
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                }
            }
            group.wait()
            #expect(failures.withLock { $0 }.isEmpty)
            #expect(try materializations(test, build) == 1)
            let reference = try Data(contentsOf: directory.appending(path: "pull-0/model.safetensors"))
            for index in 1..<8 {
                #expect(try Data(contentsOf: directory.appending(path: "pull-\(index)/model.safetensors")) == reference)
            }
        }
    }

    /// Changes the recorded digest of the build's first changed tensor and evicts it, so its next pull
    /// rebuilds bytes that disagree with the record.
    private func alterRecordAndEvict(_ test: TestStore, _ build: Digest) throws {
        try test.store.index.database.write { db in
            try db.execute(
                sql: "UPDATE build_output SET digest = ? WHERE build_digest = ? AND kind = 'tensor' AND changed = 1 AND position = (SELECT MIN(position) FROM build_output WHERE build_digest = ? AND changed = 1)",
                arguments: [String(repeating: "0", count: 64), build, build])
        }
        try test.store.setCacheBudget(0)
    }

    /// Two tensors of a build whose merged bytes are the same share one blob: a base whose `up_proj` equals
    /// its `gate_proj`, and an adapter with the same factors on both.
    @Test func aBuildWithTwoIdenticalChangedTensorsStoresOneBlobForBoth() throws {
        try TemporaryDirectory.with { directory in
            let (gate, up) = ("model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj")
            let baseFolder = directory.appending(path: "twin-base")
            try FileManager.default.createDirectory(at: baseFolder, withIntermediateDirectories: true)
            for file in ["config.json", "generation_config.json"] {
                try FileManager.default.copyItem(
                    at: Fixtures.url("base_fp32/\(file)"), to: baseFolder.appending(path: file))
            }
            let base = try LoadedTensor.file(Fixtures.url("base_fp32/model.safetensors"))
            try AdapterFolder.writeF32(
                base.keys.sorted().compactMap { name in
                    base[name == "\(up).weight" ? "\(gate).weight" : name].map { (name, $0.shape, $0.floats) }
                },
                to: baseFolder.appending(path: "model.safetensors"))
            let adapterFolder = directory.appending(path: "twin-adapter")
            try AdapterFolder.copy("b_r16_all_rslora", to: adapterFolder, editTensors: { tensors in
                let gateFactors = Dictionary(uniqueKeysWithValues: tensors.filter { $0.name.contains(gate) }.map { ($0.name, $0) })
                for index in tensors.indices where tensors[index].name.contains(up) {
                    guard let twin = gateFactors[tensors[index].name.replacingOccurrences(of: up, with: gate)] else { continue }
                    tensors[index].values = twin.values
                }
            })
            let test = try TestStore(in: directory)
            try test.store.push(baseFolder, to: try Reference(parsing: "twin/base"))
            try test.store.push(
                adapterFolder, to: try Reference(parsing: "twin/lora"), options: PushOptions(base: try Reference(parsing: "twin/base")))
            let build = try test.store.createBuild(
                base: try Reference(parsing: "twin/base"), adapters: [(try Reference(parsing: "twin/lora"), 1)],
                tag: try Reference(parsing: "twin/merged"))
            try pull(test, "twin/merged", into: "pulled")

            let pulled = try LoadedTensor.all(in: directory.appending(path: "pulled"))
            let mergedGate = try #require(pulled["\(gate).weight"])
            #expect(pulled["\(up).weight"] == mergedGate)
            #expect(mergedGate != base["\(gate).weight"], "the adapter changed it")
            let (twins, changed, buildBlobs) = try test.store.index.database.read { db in
                (
                    try String.fetchAll(
                        db, sql: "SELECT digest FROM build_output WHERE build_digest = ? AND name IN (?, ?)",
                        arguments: [build, "\(gate).weight", "\(up).weight"]),
                    try Int.fetchOne(
                        db, sql: "SELECT COUNT(*) FROM build_output WHERE build_digest = ? AND changed = 1", arguments: [build]) ?? 0,
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM build_blob WHERE build_digest = ?", arguments: [build]) ?? 0
                )
            }
            #expect(twins.count == 2 && Set(twins).count == 1, "\(twins)")
            #expect(changed == 14 && buildBlobs == 13, "seven projections in two layers, two of them the same bytes")
            #expect(try FileManager.default.contentsOfDirectory(atPath: test.store.blobs.temporaryDirectory.path).isEmpty)
            #expect(try test.store.verify(deep: true).faults.isEmpty)
        }
    }

    @Test func aRebuildThatDisagreesWithTheRecordFailsLoudly() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let build = try create(test, "acme/checked", [("acme/a", 1)])
            try pull(test, "acme/checked", into: "first")
            try alterRecordAndEvict(test, build)
            let before = try test.snapshot()
            #expect(throws: StoreError.self) { try pull(test, "acme/checked", into: "second") }
            #expect(try test.snapshot() == before, "a failed rebuild stores nothing")
            #expect(!FileManager.default.fileExists(atPath: directory.appending(path: "second").path))
        }
    }

    @Test func aRebuildOfARecipeFromAnotherEngineThatDiffersSaysSo() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            var recipe = BuildRecipe(
                base: try test.store.resolve(try Reference(parsing: "micro/base:fp32")).digest,
                adapters: [WeightedAdapter(digest: try test.store.resolve(try Reference(parsing: "acme/a")).digest)])
            recipe.engineVersion = "1.0"
            let build = try test.store.record(recipe, tag: try Reference(parsing: "acme/old"))
            #expect(build != (try create(test, "acme/new", [("acme/a", 1)])), "the engine version is part of the recipe")
            try pull(test, "acme/old", into: "first")
            try alterRecordAndEvict(test, build)
            do {
                try pull(test, "acme/old", into: "second")
                Issue.record("the rebuild that differs from its record succeeded")
            } catch let error as StoreError {
                guard case .engineChanged(_, let recorded, let current, _) = error else {
                    Issue.record("\(error)")
                    return
                }
                #expect(recorded == "1.0" && current == BuildRecipe.currentEngineVersion)
            }
        }
    }

    @Test func aRecordMissingATensorOrAFileFailsTheRebuildInsteadOfCrashing() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            for (kind, adapter) in [("tensor", "acme/a"), ("file", "acme/b")] {
                let build = try create(test, "acme/checked-\(kind)", [(adapter, 1)])
                try test.store.setCacheBudget(nil)
                try pull(test, "acme/checked-\(kind)", into: "\(kind)-first")
                try test.store.index.database.write { db in
                    try db.execute(
                        sql: "DELETE FROM build_output WHERE build_digest = ? AND kind = ? AND position = (SELECT MAX(position) FROM build_output WHERE build_digest = ? AND kind = ?)",
                        arguments: [build, kind, build, kind])
                }
                try test.store.setCacheBudget(0)
                #expect(throws: StoreError.self, "\(kind)") { try pull(test, "acme/checked-\(kind)", into: "\(kind)-again") }
                #expect(!FileManager.default.fileExists(atPath: directory.appending(path: "\(kind)-again").path))
            }
        }
    }

    @Test func lineageAnswersBothWaysAndProtectsDependencies() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let mix = try create(test, "acme/mix", [("acme/a", 0.7), ("acme/b", 0.3)])
            let adHoc = try test.store.resolveBuild("micro/base:fp32+acme/b@0.5")
            let lineage = try test.store.lineage(try Reference(parsing: "acme/mix"))
            #expect(lineage.base?.tags == ["micro/base:fp32"])
            #expect(lineage.adapters.map(\.tags) == [["acme/a:latest"], ["acme/b:latest"]])
            #expect(lineage.adapters.map(\.weight) == [0.7, 0.3])
            let fromB = try test.store.lineage(try Reference(parsing: "acme/b"))
            #expect(Set(fromB.derivedBuilds.map(\.digest)) == [mix, adHoc])
            let fromBase = try test.store.lineage(try Reference(parsing: "micro/base:fp32"))
            #expect(Set(fromBase.derivedBuilds.map(\.digest)) == [mix, adHoc])
            #expect(fromBase.derivedAdapters.count == 3)
            #expect(throws: StoreError.inUse(reference: "acme/b:latest", builds: [mix, adHoc].sorted().map { $0 == mix ? "acme/mix:latest" : $0.description })) {
                try test.store.untag(try Reference(parsing: "acme/b"))
            }
            try test.store.tag(try Reference(parsing: "acme/b"), as: try Reference(parsing: "acme/b:v1"))
            #expect(try test.store.untag(try Reference(parsing: "acme/b")) == ["acme/b:latest"], "another name remains")
            #expect(try test.store.untag(try Reference(parsing: "acme/b:v1"), force: true) == ["acme/b:v1"])
        }
    }

    @Test func badRecipesAreRefusedAtCreation() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            try test.push("gpt2_fp32", as: "micro/gpt2")
            try test.push("adapters/g_gpt2_r8_fan_in_fan_out", as: "acme/g", base: "micro/gpt2")
            #expect(throws: StoreError.self) { try create(test, "acme/wrong", [("acme/g", 1)]) }
            #expect(throws: StoreError.wrongKind(reference: "acme/a:latest", expected: .base, found: .adapter)) {
                try test.store.createBuild(base: try Reference(parsing: "acme/a"), adapters: [])
            }
            #expect(try test.store.list(kind: .build).isEmpty)
        }
    }

    @Test func aHeldBuildIsNotEvictedAndAHoldFitsAnyBudget() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let build = try create(test, "acme/served", [("acme/a", 1)])
            try test.store.setCacheBudget(0)
            var held: BuildHold? = try test.store.holdForServing(build).hold
            #expect(try test.store.materializedOutput(of: build) != nil, "a budget below the build still lets it be served")
            #expect(try test.store.enforceCacheBudget().isEmpty)
            #expect(try test.store.materializedOutput(of: build) != nil)
            withExtendedLifetime(held) {}
            held = nil
            #expect(try test.store.enforceCacheBudget() == [build], "released, it is evicted")
            let again = try test.store.holdForServing(build)
            #expect(again.merged, "and rebuilt for the next request")
        }
    }

    /// `show` of a build describes its recipe and its merged size, as `ls` counts it, whether or not it is
    /// materialized.
    @Test func aBuildsDescriptionHoldsItsRecipeAndMergedSize() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            let build = try create(test, "acme/mix", [("acme/a", 0.7), ("acme/b", -0.25)])
            let description = try test.store.describe(try Reference(parsing: "acme/mix"))
            let listed = try #require(try test.store.list(kind: .build).first { $0.digest == build })
            #expect(description.logicalSize > 0 && description.logicalSize == listed.logicalSize)
            #expect(description.recipe?.adapters.map(\.weight) == [0.7, -0.25])
            #expect(description.recipe?.base == (try test.store.resolve(try Reference(parsing: "micro/base:fp32")).digest))
            #expect(description.baseTags == ["micro/base:fp32"])
        }
    }

    @Test func weightsParseStrictlyAndMinusZeroIsZero() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            #expect(try test.store.resolveBuild("micro/base:fp32+acme/a@-0") == test.store.resolveBuild("micro/base:fp32+acme/a@0"))
            #expect(try create(test, "acme/minus-zero", [("acme/a", -0.0)]) == create(test, "acme/zero", [("acme/a", 0)]))
            #expect(try AdHocRecipe.weighted("acme/a@sha256:\(String(repeating: "ab", count: 32))").weight == 1)
            #expect(try AdHocRecipe.weighted("acme/a:v1@-0.25").weight == -0.25)
            #expect(try AdHocRecipe.weighted("acme/a:v1@2e-1").weight == 0.2)
            #expect { try AdHocRecipe.weighted("acme/a:v1@abc") } throws: { "\($0)".contains("the weight \"abc\" after @ is not a decimal number") }
            #expect { try AdHocRecipe.weighted("acme/a:v1@") } throws: { "\($0)".contains("is not a decimal number") }
            #expect { try AdHocRecipe.weighted("acme/a:v1@0x10") } throws: { "\($0)".contains("is not a decimal number") }
            #expect { try AdHocRecipe.weighted("acme/a:v1@0.5@0.5") } throws: { "\($0)".contains("one weight") }
            // A weight in the wrong place is named as such, not as a bad name.
            #expect { try AdHocRecipe(parsing: "micro/base:fp32@0.5+acme/a") } throws: { "\($0)".contains("the base takes no weight") }
        }
    }

    @Test func aStoredBuildRefusesMergeOptionsItDoesNotCarry() throws {
        try TemporaryDirectory.with { directory in
            let test = try store(directory)
            try create(test, "acme/plain", [("acme/a", 1)])
            var options = MergeOptions()
            options.outputType = .f16
            #expect { try test.store.pull("acme/plain", to: directory.appending(path: "f16"), options: options) } throws: {
                "\($0)".contains("merge options apply to ad-hoc recipes") && "\($0)".contains("a stored build")
            }
            #expect(!FileManager.default.fileExists(atPath: directory.appending(path: "f16").path))
            #expect { try test.store.pull("micro/base:fp32", to: directory.appending(path: "f16"), options: options) } throws: {
                "\($0)".contains("micro/base:fp32 is a base") && !"\($0)".contains("stored build")
            }
            let adHoc = try test.store.pull("micro/base:fp32+acme/a", to: directory.appending(path: "adhoc"), options: options)
            #expect(try LoadedTensor.all(in: URL(fileURLWithPath: adHoc.destination)).values.contains { $0.dtype == .f16 })
        }
    }
}
