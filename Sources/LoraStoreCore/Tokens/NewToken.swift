/// A token just created: its record and its secret, which is shown this once and stored only as a hash.
public struct NewToken: Sendable, Hashable, Codable {
    public var token: AccessToken
    /// ``secretPrefix`` followed by 64 hex digits (32 random bytes).
    public var secret: String

    /// How every lorastore secret begins, so a server can tell its own tokens from other services' (a
    /// Hugging Face client sends the user's huggingface.co token to any endpoint).
    public static let secretPrefix = "lst_"
}
