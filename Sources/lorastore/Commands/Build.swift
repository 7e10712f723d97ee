import ArgumentParser
import Foundation
import LoraStoreClient
import LoraStoreCore

struct Build: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record merged builds (recipes) without computing them.",
        subcommands: [Create.self, Report.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record a build recipe and tag it. Nothing is merged until the first pull.")

        @Argument(help: "The build's name: NAME[:TAG].")
        var name: String

        @Option(help: "The base model reference.")
        var base: String

        @Option(name: .customLong("adapter"), help: "An adapter as REF[@WEIGHT] (repeatable, applied in order).")
        var adapters: [String] = []

        @OptionGroup var merge: MergeOptionGroup

        @OptionGroup var quantized: QuantizedBuildOptions

        @OptionGroup var adapterBase: AdapterBaseOption

        @OptionGroup var global: GlobalOptions

        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let tag = try parseReference(name)
            let baseReference = try parseReference(base)
            let adapterArguments = try adapters.map(AdapterArgument.init(parsing:)).map { ($0.reference, $0.weight) }
            let options = try quantized.apply(to: merge.options())
            // Whether the recipe was materialized already (the same recipe under another name); a registry's
            // cache is not asked.
            let digest: Digest
            var materialized: Bool?
            if let client = try remote.client() {
                digest = try await client.createBuild(
                    tag: tag, base: baseReference, adapters: adapterArguments, options: options,
                    allowingOtherBase: adapterBase.allowOtherBase)
            } else {
                let store = try global.openStore()
                digest = try store.createBuild(
                    base: baseReference, adapters: adapterArguments, options: options, tag: tag,
                    allowingOtherBase: adapterBase.allowOtherBase)
                materialized = try store.isMaterialized(digest)
            }
            if global.json {
                try Output.json(["reference": tag.description, "digest": digest.description])
            } else {
                print("created build \(tag) \(digest)")
                // A registry named by --remote is named again; one from LORASTORE_REMOTE is still set.
                let pull = "`lorastore pull \(tag) -o DIR" + (remote.remote.map { " --remote \($0)" } ?? "") + "`"
                switch materialized {
                case true?: print("  already merged (the same recipe was pulled before): \(pull) copies its stored tensors")
                case false?: print("  nothing merged yet: \(pull) materializes it")
                case nil: print("  \(pull) materializes it, or copies it if the registry has it merged")
                }
            }
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show how faithfully a materialized build carries its adapters.",
            discussion: """
                Per touched tensor and in total, against the exact F32 result: the share of the adapters that \
                survived (1 = all), the relative error ‖W_out − W_exact‖ / ‖Δ‖, the error on fixed random inputs \
                (output probe) and, for quantized outputs, the share of codes that moved; merged and applied on \
                the fly side by side. Measured when the build is first pulled.
                """)

        @Argument(help: "The build.")
        var reference: String

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let build = try parseReference(reference)
            guard let report = try global.openStore().buildReport(build) else {
                throw CommandError("\(reference) has no fidelity report: it was not materialized yet (pull it first)")
            }
            if global.json {
                try Output.json(report)
                return
            }
            print("build \(report.build.short), \(report.policy.map { "\($0.rawValue) policy, " } ?? "")output \(report.application.rawValue)")
            func share(_ value: Double?) -> String { value.map { String(format: "%.4f", $0) } ?? "-" }
            var rows = [["tensor", "survived", "rel. error", "probe error", "codes moved", "on the fly: survived", "rel. error", "probe error"]]
            for tensor in report.tensors + [BuildReport.Tensor(name: "total", fidelity: report.total)] {
                let merged = tensor.fidelity.merged
                let fly = tensor.fidelity.onTheFly
                rows.append([
                    tensor.name, share(merged.survivedShare), share(merged.relativeError), share(merged.probeRelativeError),
                    share(merged.codesMovedShare), share(fly.survivedShare), share(fly.relativeError), share(fly.probeRelativeError),
                ])
            }
            Output.table(rows)
            print(report.summary)
        }
    }
}

/// The recipe options for builds on a quantized base, and the adapter-loss guard rail.
struct QuantizedBuildOptions: ParsableArguments {
    @Option(help: "On a quantized base: requantize, dequantize (float output) or separate (base plus PEFT adapters).")
    var policy: QuantizedBuildPolicy?

    @Option(help: """
        Fail the build when it loses more than this share of its adapters: its output's distance from the exact \
        merge, ‖W_out − W_exact‖ / ‖Δ‖ (default 0.1 when requantized).
        """)
    var maxAdapterLoss: Double?

    /// `options` with the policy and the loss limit set.
    func apply(to options: MergeOptions) throws -> MergeOptions {
        if let maxAdapterLoss, !(maxAdapterLoss >= 0 && maxAdapterLoss.isFinite) {
            throw CommandError("--max-adapter-loss is a share of 0 or more (above 1 allows an output further from the exact merge than the base)")
        }
        var options = options
        options.quantizedBase = policy
        options.maxAdapterLoss = maxAdapterLoss
        return options
    }
}

extension QuantizedBuildPolicy: ExpressibleByArgument {}
