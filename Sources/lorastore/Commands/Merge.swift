import ArgumentParser
import Foundation
import LoraStoreCore

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge adapters into a base now and write a model folder (no build is recorded).",
        discussion: """
            Each --adapter is REF[@WEIGHT]; the merged weight is W + Σ weight·scale·B·A, computed in F32 and \
            rounded once to the output dtype. Tensors no adapter touches are copied bit-identical.
            """)

    @Option(help: "The base model reference.")
    var base: String

    @Option(name: .customLong("adapter"), help: "An adapter as REF[@WEIGHT] (repeatable, applied in order).")
    var adapters: [String] = []

    @OptionGroup var merge: MergeOptionGroup

    @OptionGroup var quantized: QuantizedBuildOptions

    @OptionGroup var adapterBase: AdapterBaseOption

    @Option(name: .shortAndLong, help: "The folder to write (must not exist, or be empty).")
    var output: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let options = try quantized.apply(to: merge.options())
        let adapterArguments = try adapters.map(AdapterArgument.init(parsing:))
        let store = try global.openStore()
        let progress = ProgressBar(quiet: global.json)
        let result = try store.merge(
            base: try parseReference(base), adapters: adapterArguments.map { ($0.reference, $0.weight) },
            options: options, allowingOtherBase: adapterBase.allowOtherBase, to: URL(fileURLWithPath: output),
            progress: progress.handler)
        progress.finish()
        if global.json {
            try Output.json(result)
            return
        }
        print("merged \(result.adapters.count) adapter(s) into \(result.base.short): \(result.changedTensors) of \(result.tensorCount) tensors changed")
        for (file, digest) in result.files.sorted(by: { $0.key < $1.key }) {
            print("  \(result.destination)/\(file)  \(digest.short)")
        }
    }
}
