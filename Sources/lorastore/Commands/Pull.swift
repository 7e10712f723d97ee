import ArgumentParser
import Foundation
import LoraStoreClient
import LoraStoreCore

struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a base, adapter or merged build into a folder.",
        discussion: """
            REF names a build, base or adapter, or is an ad-hoc recipe BASE+ADAPTER[@WEIGHT]+... such as \
            micro/base:fp32+acme/support@0.7+acme/legal@0.3 (recorded untagged, so pulling it again reuses \
            the cache). A build's first pull merges; later pulls copy stored tensors.
            """)

    @Argument(help: "What to pull.")
    var reference: String

    @Option(name: .shortAndLong, help: "The folder to write (must not exist, or be empty).")
    var output: String

    @Option(help: "For a quantized base: write its quantized weights as F32, F16 or BF16 instead of codes and scales.")
    var dequantize: String?

    @OptionGroup var merge: MergeOptionGroup

    @OptionGroup var quantized: QuantizedBuildOptions

    @OptionGroup var adapterBase: AdapterBaseOption

    @OptionGroup var global: GlobalOptions

    @OptionGroup var remote: RemoteOptions

    func run() async throws {
        let client = try remote.client()
        let options = try quantized.apply(to: merge.options())
        let dequantizeType = try dequantize.map { text in
            guard let dtype = DType(rawValue: text.uppercased()), dtype.isMergeable else {
                throw CommandError("dequantize \(text): choose F32, F16 or BF16")
            }
            return dtype
        }
        if client != nil, dequantizeType != nil {
            throw CommandError("--dequantize applies to a local store")
        }
        if client != nil, options != MergeOptions() {
            throw CommandError("merge options apply to local ad-hoc recipes; on a registry, create a build with them (build create)")
        }
        if client != nil, adapterBase.allowOtherBase {
            throw CommandError(
                "--allow-other-base applies to local ad-hoc recipes; on a registry, create a build with it (build create --allow-other-base)")
        }
        let progress = ProgressBar(quiet: global.json)
        let result: PullResult
        if let client {
            result = try await client.pull(reference, to: URL(fileURLWithPath: output), progress: progress.handler)
        } else {
            result = try global.openStore().pull(
                reference, to: URL(fileURLWithPath: output), options: options, dequantize: dequantizeType,
                allowingOtherBase: adapterBase.allowOtherBase, progress: progress.handler)
        }
        progress.finish()
        if global.json {
            try Output.json(result)
            return
        }
        let how = client.map { "downloaded from \($0.endpoint), every file checked against its SHA-256" }
            ?? (result.report?.application == .onTheFly ? "base and adapters written apart, to apply at inference"
                : result.merged ? (result.rebuilt ? "rebuilt and verified against recorded digests" : "merged") : "from stored tensors")
        print("pulled \(result.kind.rawValue) \(result.digest.short) into \(result.destination) (\(Output.bytes(result.bytes)), \(how))")
        if let report = result.report {
            print("  \(report.summary)")
        }
        for digest in result.evicted {
            print("  evicted build \(digest.short) to stay within the cache budget")
        }
    }
}
