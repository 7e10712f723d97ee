/// What a token allows, each scope including the ones before it: `read` pulls and queries, `push` also
/// uploads blobs, pushes manifests and creates builds. `admin` allows what `push` does (no route needs
/// more yet; it is reserved for administration), within its namespace like the others.
public enum TokenScope: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case read
    case push
    case admin

    private var rank: Int {
        switch self {
        case .read: 0
        case .push: 1
        case .admin: 2
        }
    }

    public static func < (lhs: TokenScope, rhs: TokenScope) -> Bool { lhs.rank < rhs.rank }
}
