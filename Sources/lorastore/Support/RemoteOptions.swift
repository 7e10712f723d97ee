import ArgumentParser
import Foundation
import LoraStoreClient

/// `--remote URL` and `--token TOKEN` (or `LORASTORE_REMOTE`, `LORASTORE_TOKEN`): run a command against a
/// registry server instead of the local store.
struct RemoteOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("A registry server to use instead of the local store (default: $LORASTORE_REMOTE).", valueName: "url"))
    var remote: String?

    @Option(name: .long, help: ArgumentHelp("The registry token (default: $LORASTORE_TOKEN).", valueName: "token"))
    var token: String?

    /// The client for the server, or nil when no server is named.
    func client() throws -> RegistryClient? {
        let environment = ProcessInfo.processInfo.environment
        guard let text = remote ?? environment["LORASTORE_REMOTE"], !text.isEmpty else { return nil }
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil,
              (0...65535).contains(url.port ?? 0)
        else {
            throw CommandError("--remote \(text): give the server's URL, e.g. http://127.0.0.1:8080")
        }
        let token = token ?? environment["LORASTORE_TOKEN"]
        return RegistryClient(endpoint: url, token: token?.isEmpty == false ? token : nil)
    }
}
