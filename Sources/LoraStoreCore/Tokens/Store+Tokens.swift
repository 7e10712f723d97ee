import Foundation
import GRDB

extension Store {
    /// Creates a token allowing `scope` on `namespace` and returns its secret, which the store does not keep
    /// (only its SHA-256).
    public func createToken(scope: TokenScope, namespace: String = "*") throws -> NewToken {
        try AccessToken.validate(namespace: namespace)
        var generator = SystemRandomNumberGenerator()
        let secret = NewToken.secretPrefix + (0..<32).map { _ in hex(UInt8.random(in: .min ... .max, using: &generator)) }.joined()
        let id = (0..<6).map { _ in hex(UInt8.random(in: .min ... .max, using: &generator)) }.joined()
        let now = Date()
        try index.database.write { db in
            try db.execute(
                sql: "INSERT INTO token (id, secret_hash, scope, namespace, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [id, Digest(of: Array(secret.utf8)).hex, scope.rawValue, namespace, now.timeIntervalSince1970])
        }
        return NewToken(
            token: AccessToken(id: id, scope: scope, namespace: namespace, createdAt: now, revokedAt: nil), secret: secret)
    }

    /// Every token, oldest first, revoked ones included.
    public func tokens() throws -> [AccessToken] {
        try index.database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM token ORDER BY created_at, id").map(Self.token(from:))
        }
    }

    /// Revokes a token by id (at once: the next request with it is refused).
    public func revokeToken(id: String) throws {
        try index.database.write { db in
            try db.execute(
                sql: "UPDATE token SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                arguments: [Date().timeIntervalSince1970, id])
            guard db.changesCount > 0 else {
                let known = try Bool.fetchOne(db, sql: "SELECT 1 FROM token WHERE id = ?", arguments: [id]) ?? false
                throw known
                    ? StoreError.invalidInput(path: "token \(id)", reason: "is already revoked")
                    : StoreError.notFound("token \(id)")
            }
        }
    }

    /// The live token whose secret is `secret`, or nil (unknown or revoked).
    public func authenticate(secret: String) throws -> AccessToken? {
        let hash = Digest(of: Array(secret.utf8)).hex
        return try index.database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM token WHERE secret_hash = ? AND revoked_at IS NULL", arguments: [hash])
                .map(Self.token(from:))
        }
    }

    private static func token(from row: Row) -> AccessToken {
        let revoked: Double? = row["revoked_at"]
        return AccessToken(
            id: row["id"], scope: TokenScope(rawValue: row["scope"]) ?? .read, namespace: row["namespace"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]), revokedAt: revoked.map(Date.init(timeIntervalSince1970:)))
    }
}

private func hex(_ byte: UInt8) -> String {
    byte < 16 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
}
