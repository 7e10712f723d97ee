/// A token just created: its record and its secret, which is shown this once and stored only as a hash.
public struct NewToken: Sendable, Hashable, Codable {
    public var token: AccessToken
    /// `lst_` followed by 64 hex digits (32 random bytes).
    public var secret: String
}
