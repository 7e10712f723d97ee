import ArgumentParser
import Foundation
import LoraStoreCore
import LoraStoreServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a registry server over the store (HTTP API, remote push and pull, Hugging Face downloads).",
        discussion: """
            Pushes always need a push token for the repository's namespace (`lorastore token create`); reads are \
            open unless --require-read-token. The API is documented in API.md. Hugging Face tools download from \
            the server with HF_ENDPOINT=http://HOST:PORT. While `lorastore gc` or `verify --repair` runs on the \
            store, a request that must write waits up to 30 s for it, then is answered 503 BUSY with Retry-After \
            (the CLI's push and pull try again).
            """)

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0 picks a free one).")
    var port = 8080

    @Flag(help: "Require a read token for pulls, listings and Hugging Face downloads.")
    var requireReadToken = false

    @Option(help: "The largest blob upload accepted (e.g. 20GB; default 64GiB).")
    var maxBlobSize: ByteSize?

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port): a port is a number from 0 to 65535") }
        if let maxBlobSize, maxBlobSize.bytes == 0 {
            throw ValidationError("--max-blob-size 0 would refuse every upload; give the largest blob to accept, e.g. 20GB")
        }
    }

    func run() async throws {
        // A request that finds garbage collection running gives up after this and is answered 503 (BUSY,
        // Retry-After), rather than holding a worker thread for as long as the collection takes.
        let store = try global.openStore(creating: true, maintenanceWait: .seconds(30))
        var configuration = RegistryConfiguration(host: host, port: port, requireTokenForReads: requireReadToken)
        if let maxBlobSize { configuration.maxBlobSize = maxBlobSize.bytes }
        let (host, root) = (host, store.root.path)
        try await RegistryServer.run(store: store, configuration: configuration) { port in
            Output.note("serving \(root) on http://\(host):\(port)")
        }
    }
}
