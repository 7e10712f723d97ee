-- Access tokens of a registry server. Only the SHA-256 of each secret is kept: the secret is shown once,
-- when the token is created. A token allows its scope (read < push < admin) on the repositories its
-- namespace matches ('*' for all, 'acme/*' for every repository under acme/, or one repository name).

CREATE TABLE token (
    id          TEXT NOT NULL PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE CHECK (length(secret_hash) = 64),
    scope       TEXT NOT NULL CHECK (scope IN ('read', 'push', 'admin')),
    namespace   TEXT NOT NULL,
    created_at  REAL NOT NULL,
    revoked_at  REAL
) WITHOUT ROWID;
