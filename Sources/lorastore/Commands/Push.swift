import ArgumentParser
import Foundation
import LoraStoreClient
import LoraStoreCore

struct Push: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push a base model or PEFT adapter into the store.",
        discussion: """
            PATH is a Hugging Face model folder (config.json with model.safetensors, or shards and \
            model.safetensors.index.json), a single .safetensors file, or a PEFT adapter folder \
            (adapter_config.json and adapter_model.safetensors). Tensors already in the store are not stored again.

            Several PATH REFERENCE pairs push in one batch, all or nothing: every folder is checked before anything \
            is written, the new tensors are flushed to disk together and one transaction records them all. This is \
            much faster than one push per folder for many small adapters (local stores only).
            """)

    @Argument(help: ArgumentHelp(
        "The model or adapter folder (or .safetensors file), then where to tag it (NAME[:TAG]); repeat the pair to push several at once.",
        valueName: "PATH REFERENCE"))
    var pairs: [String]

    @Option(help: "For an adapter: the base it was trained on (default: the base of the repository's last push).")
    var base: String?

    @Option(help: "What the folder holds (default: detected from the files).")
    var kind: PushedKind?

    @Option(help: "For a base: store it quantized (int8-row, q8_0 or q4_0), as `lorastore quantize` would.")
    var quantize: QuantizationScheme?

    @OptionGroup var global: GlobalOptions

    @OptionGroup var remote: RemoteOptions

    func validate() throws {
        guard !pairs.isEmpty, pairs.count.isMultiple(of: 2) else {
            throw ValidationError("give a PATH and a REFERENCE for each push (got \(pairs.count) arguments)")
        }
        if let empty = stride(from: 0, to: pairs.count, by: 2).first(where: { pairs[$0].isEmpty }) {
            throw ValidationError("argument \(empty + 1) is an empty path; name the folder or file to push (. for this folder)")
        }
        if pairs.count > 2, quantize != nil {
            throw ValidationError("--quantize applies to one base at a time")
        }
    }

    func run() async throws {
        let items = try stride(from: 0, to: pairs.count, by: 2).map { index in
            PushItem(path: URL(fileURLWithPath: pairs[index]), reference: try parseReference(pairs[index + 1]))
        }
        let baseReference = try base.map(parseReference)
        let client = try remote.client()
        let progress = ProgressBar(quiet: global.json)
        if client != nil, quantize != nil {
            throw CommandError("--quantize applies to a local store: push --quantize (or quantize) locally, pull the quantized base into a folder, then push that folder to the registry")
        }
        let options = PushOptions(kind: kind?.manifestKind, base: baseReference, progress: progress.handler, quantize: quantize)
        guard items.count == 1 else {
            guard client == nil else {
                throw CommandError("a registry takes one push at a time; push each folder with its own command")
            }
            let results = try global.openStore(creating: true).push(items, options: options)
            progress.finish()
            try Self.describe(batch: results, json: global.json)
            return
        }
        let path = items[0].path
        let destination = items[0].reference
        let result: PushResult
        if let client {
            result = try await client.push(path, to: destination, options: options)
        } else {
            result = try global.openStore(creating: true).push(path, to: destination, options: options)
        }
        progress.finish()
        if global.json {
            try Output.json(result)
            return
        }
        let what = result.kind == .base ? "base" : "adapter"
        print("pushed \(what) \(result.reference) \(result.digest)")
        print("  \(result.tensorCount) tensor(s), \(result.fileCount) file(s), \(Output.bytes(result.logicalBytes))")
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

    /// Prints what a batch push stored: one line per item, then the totals.
    static func describe(batch results: [PushResult], json: Bool) throws {
        if json {
            try Output.json(results)
            return
        }
        for result in results {
            let moved = result.previousDigest.map { $0 != result.digest ? " (moved from \($0.short))" : "" } ?? ""
            print("pushed \(result.kind) \(result.reference) \(result.digest)\(moved)")
        }
        let newBlobs = results.reduce(0) { $0 + $1.newBlobs }
        let newLogical = results.reduce(0) { $0 + $1.newLogicalBytes }
        let newStored = results.reduce(0) { $0 + $1.newStoredBytes }
        let reused = results.reduce(0) { $0 + $1.reusedBytes }
        print("  \(results.count) pushes in one transaction: stored \(newBlobs) new blobs, \(Output.bytes(newLogical)) as \(Output.bytes(newStored)) on disk")
        if reused > 0 {
            print("  reused \(Output.bytes(reused)) already in the store")
        }
        for result in results {
            for skipped in result.skippedFiles {
                print("  \(result.reference): skipped \(skipped)")
            }
        }
    }
}
