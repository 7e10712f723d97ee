import ArgumentParser
import Foundation
import LoraStoreClient
import LoraStoreCore

struct Push: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push a base model or PEFT adapter into the store.",
        discussion: """
            PATH is a Hugging Face model folder (config.json with model.safetensors, or shards and
            model.safetensors.index.json), a single .safetensors file, or a PEFT adapter folder
            (adapter_config.json and adapter_model.safetensors). Tensors already in the store are not stored again.
            """)

    @Argument(help: "The model or adapter folder, or a .safetensors file.")
    var path: String

    @Argument(help: "Where to tag it: NAME[:TAG].")
    var reference: String

    @Option(help: "For an adapter: the base it was trained on (default: the base of the repository's last push).")
    var base: String?

    @Option(help: "base or adapter (default: detected from the files).")
    var kind: ManifestKind?

    @Option(help: "For a base: store it quantized (int8-row, q8_0 or q4_0), as `lorastore quantize` would.")
    var quantize: QuantizationScheme?

    @OptionGroup var global: GlobalOptions

    @OptionGroup var remote: RemoteOptions

    func run() async throws {
        let destination = try parseReference(reference)
        let baseReference = try base.map(parseReference)
        let client = try remote.client()
        let progress = ProgressBar()
        if client != nil, quantize != nil {
            throw ValidationError("--quantize applies to a local store; quantize locally, then push the quantized base's folder")
        }
        let options = PushOptions(kind: kind, base: baseReference, progress: progress.handler, quantize: quantize)
        let result: PushResult
        if let client {
            result = try await client.push(URL(fileURLWithPath: path), to: destination, options: options)
        } else {
            result = try global.openStore().push(URL(fileURLWithPath: path), to: destination, options: options)
        }
        progress.finish()
        if global.json {
            try Output.json(result)
            return
        }
        let what = result.kind == .base ? "base" : "adapter"
        print("pushed \(what) \(result.reference) \(result.digest)")
        print("  \(result.tensorCount) tensors, \(result.fileCount) files, \(Output.bytes(result.logicalBytes))")
        if result.newBlobs == 0 {
            print("  no new bytes stored: every tensor and file was already in the store")
        } else if let client {
            print("  uploaded \(result.newBlobs) blobs (\(Output.bytes(result.newLogicalBytes))) to \(client.endpoint)")
            if result.reusedBytes > 0 {
                print("  \(Output.bytes(result.reusedBytes)) were already on the server")
            }
        } else {
            print("  stored \(result.newBlobs) new blobs: \(Output.bytes(result.newLogicalBytes)) as \(Output.bytes(result.newStoredBytes)) on disk")
            if result.reusedBytes > 0 {
                print("  reused \(Output.bytes(result.reusedBytes)) already in the store")
            }
        }
        if let previous = result.previousDigest, previous != result.digest {
            print("  moved \(result.reference) from \(previous.short)")
        }
        Quantize.describe(result)
        for skipped in result.skippedFiles {
            print("  skipped \(skipped)")
        }
    }
}
