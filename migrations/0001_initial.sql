-- The store index: what blobs exist, which manifests reference them, and the names that point at manifests.
-- Blob bytes live on disk under blobs/sha256/; a row here means the file is complete and verified.

-- One row per content-addressed blob. digest is the lowercase hex SHA-256 of the logical (raw) bytes.
CREATE TABLE blob (
    digest       TEXT    NOT NULL PRIMARY KEY CHECK (length(digest) = 64),
    logical_size INTEGER NOT NULL CHECK (logical_size >= 0),
    stored_size  INTEGER NOT NULL CHECK (stored_size >= 0),
    codec        TEXT    NOT NULL CHECK (codec IN ('raw', 'bgzip')),
    created_at   REAL    NOT NULL
) WITHOUT ROWID;

-- Manifests are canonical JSON documents, content-addressed like blobs and kept inline.
CREATE TABLE manifest (
    digest       TEXT    NOT NULL PRIMARY KEY CHECK (length(digest) = 64),
    kind         TEXT    NOT NULL CHECK (kind IN ('base', 'adapter', 'build')),
    content      BLOB    NOT NULL,
    logical_size INTEGER NOT NULL,
    base_digest  TEXT    REFERENCES manifest(digest),
    created_at   REAL    NOT NULL
) WITHOUT ROWID;
CREATE INDEX manifest_by_kind ON manifest(kind);
CREATE INDEX manifest_by_base ON manifest(base_digest);

-- Which blobs each manifest references (for garbage collection, accounting and verification).
CREATE TABLE manifest_blob (
    manifest_digest TEXT NOT NULL REFERENCES manifest(digest) ON DELETE CASCADE,
    blob_digest     TEXT NOT NULL REFERENCES blob(digest),
    PRIMARY KEY (manifest_digest, blob_digest)
) WITHOUT ROWID;
CREATE INDEX manifest_blob_by_blob ON manifest_blob(blob_digest);

-- A repository holds manifests of one kind under tags (acme/support-bot:v2).
CREATE TABLE repository (
    name       TEXT NOT NULL PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('base', 'adapter', 'build')),
    created_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE tag (
    repository      TEXT NOT NULL REFERENCES repository(name),
    name            TEXT NOT NULL,
    manifest_digest TEXT NOT NULL REFERENCES manifest(digest),
    updated_at      REAL NOT NULL,
    PRIMARY KEY (repository, name)
) WITHOUT ROWID;
CREATE INDEX tag_by_manifest ON tag(manifest_digest);

-- Adapter metadata as queryable columns. JSON columns hold lists (target_modules holds a JSON list, or a
-- JSON string when the config gives a regular expression).
CREATE TABLE adapter (
    manifest_digest TEXT    NOT NULL PRIMARY KEY REFERENCES manifest(digest) ON DELETE CASCADE,
    base_digest     TEXT    NOT NULL REFERENCES manifest(digest),
    peft_type       TEXT    NOT NULL,
    rank            INTEGER NOT NULL,
    alpha           REAL    NOT NULL,
    use_rslora      INTEGER NOT NULL,
    use_dora        INTEGER NOT NULL,
    fan_in_fan_out  INTEGER NOT NULL,
    dtype           TEXT    NOT NULL,
    bias            TEXT    NOT NULL,
    task_type       TEXT,
    target_modules  TEXT    NOT NULL,
    layers          TEXT    NOT NULL,
    modules_to_save TEXT    NOT NULL,
    rank_pattern    TEXT    NOT NULL,
    alpha_pattern   TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX adapter_by_base ON adapter(base_digest);

-- Store-wide settings (codec policy, cache budget...), one value per key.
CREATE TABLE setting (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
