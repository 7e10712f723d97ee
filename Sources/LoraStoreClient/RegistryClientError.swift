import LoraStoreCore
/// Why a registry request failed, with a message for people.
public enum RegistryClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server answered with an error: its HTTP status, stable code and message.
    case server(status: Int, code: String, message: String)
    /// The server's answer is not what the API promises.
    case invalidResponse(String)
    /// A downloaded file does not hash to the digest the server listed (it was removed).
    case corrupt(file: String, expected: Digest, actual: Digest)
    /// The request did not reach the server or its answer did not arrive (connection refused, timed out).
    case transport(url: String, reason: String)

    public var description: String {
        switch self {
        case .server(let status, let code, let message):
            "the registry refused the request (\(status) \(code)): \(message)"
        case .invalidResponse(let reason):
            "unexpected answer from the registry: \(reason)"
        case .corrupt(let file, let expected, let actual):
            "\(file) downloaded as \(actual.short), expected \(expected.short); the partial file was removed, run again"
        case .transport(let url, let reason):
            "the request to \(url) failed: \(reason)"
        }
    }
}
