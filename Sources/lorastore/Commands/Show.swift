import ArgumentParser
import Foundation
import LoraStoreClient
import LoraStoreCore

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a base, adapter or build: metadata, tensors, and their sizes logical and stored.")

    @Argument(help: "NAME[:TAG], NAME@sha256:<hex> or sha256:<hex>.")
    var reference: String

    @OptionGroup var global: GlobalOptions

    @OptionGroup var remote: RemoteOptions

    func run() async throws {
        let parsed = try parseReference(reference)
        let client = try remote.client()
        let description = if let client {
            try await client.describe(parsed)
        } else {
            try global.openStore().describe(parsed)
        }
        if global.json {
            try Output.json(description)
            return
        }
        print("\(description.kind.rawValue) \(description.digest)")
        print("tags:      \(description.tags.isEmpty ? "(none)" : description.tags.joined(separator: ", "))")
        guard description.kind != .build else {
            // A build is a recipe: what it is made of, and where its sizes are counted.
            let lineage = if let client {
                try await client.lineage(parsed)
            } else {
                try global.openStore().lineage(parsed)
            }
            let name = { (node: Lineage.Node) in node.tags.first ?? node.digest.short }
            print("base:      \(lineage.base.map(name) ?? "-")")
            for (index, adapter) in lineage.adapters.enumerated() {
                let weight = adapter.weight.map { "@" + formatNumber($0) } ?? ""
                print("\(index == 0 ? "adapters:  " : "           ")\(name(adapter))\(weight)")
            }
            print("size:      \(Output.bytes(description.logicalSize)) of merged tensors")
            print("")
            print("What it keeps on disk: lorastore stats \(reference); its cache state: lorastore cache status")
            return
        }
        print("size:      \(Output.bytes(description.logicalSize)) as files, \(Output.bytes(description.storedSize)) stored")
        if let quantization = description.quantization, !quantization.isEmpty {
            let schemes = Set(quantization.values.map(\.scheme.rawValue)).sorted().joined(separator: ", ")
            print("quantized: \(schemes), \(quantization.count) weight(s)")
        }
        if let adapter = description.adapter {
            let base = description.baseTags.first ?? adapter.baseDigest.description
            print("base:      \(base) (\(adapter.baseDigest.short))")
            print("rank:      \(adapter.rank)    alpha: \(formatNumber(adapter.alpha))    scale: \(scaleText(adapter))")
            print("targets:   \(targetsText(adapter.targetModules))")
            print("dtype:     \(adapter.dtype.rawValue)")
            print("layers:    \(adapter.layers.isEmpty ? "-" : adapter.layers.map(String.init).joined(separator: ", "))")
            var flags: [String] = []
            if adapter.useRSLoRA { flags.append("rsLoRA") }
            if adapter.useDoRA { flags.append("DoRA") }
            if adapter.fanInFanOut { flags.append("fan_in_fan_out") }
            if adapter.bias != "none" { flags.append("bias=\(adapter.bias)") }
            if !flags.isEmpty { print("options:   \(flags.joined(separator: ", "))") }
            if !adapter.modulesToSave.isEmpty { print("saves:     \(adapter.modulesToSave.joined(separator: ", "))") }
            for (label, patterns) in [("rank_pattern", adapter.rankPattern), ("alpha_pattern", adapter.alphaPattern)]
            where !patterns.isEmpty {
                print("\(label): " + patterns.map { "\($0.pattern)=\(formatNumber($0.value))" }.joined(separator: ", "))
            }
        }
        print("")
        var rows = [["TENSOR", "DTYPE", "SHAPE", "SIZE", "STORED", "CODEC"]]
        for tensor in description.tensors {
            rows.append([
                tensor.name, tensor.dtype.rawValue, Output.shape(tensor.shape), Output.bytes(tensor.size),
                Output.bytes(tensor.storedSize), tensor.codec.rawValue,
            ])
        }
        Output.table(rows)
        if !description.files.isEmpty {
            print("")
            Output.table([["FILE", "SIZE"]] + description.files.map { [$0.path, Output.bytes($0.size)] })
        }
    }

    private func formatNumber(_ value: Double) -> String {
        Int(exactly: value).map(String.init) ?? String(value)
    }

    private func scaleText(_ adapter: AdapterRecord) -> String {
        let rank = Double(adapter.rank)
        let scale = adapter.alpha / (adapter.useRSLoRA ? rank.squareRoot() : rank)
        return String(format: "%g", scale)
    }

    private func targetsText(_ targets: AdapterConfig.TargetModules) -> String {
        switch targets {
        case .names(let names): names.joined(separator: ", ")
        case .pattern(let pattern): "regex \(pattern)"
        case .unspecified: "(from the model type)"
        }
    }
}
