-- Builds: merge recipes (kept in the manifest table, kind 'build'), their lineage, and what their
-- materialization produced. A build's recipe and recorded output digests stay forever; its materialized
-- tensors (build_blob) come and go with the cache.

CREATE TABLE build (
    digest           TEXT    NOT NULL PRIMARY KEY REFERENCES manifest(digest) ON DELETE CASCADE,
    base_digest      TEXT    NOT NULL REFERENCES manifest(digest),
    -- 'recipe': nothing stored (never materialized, or evicted); 'materialized': every output is on disk.
    state            TEXT    NOT NULL CHECK (state IN ('recipe', 'materialized')) DEFAULT 'recipe',
    pinned           INTEGER NOT NULL DEFAULT 0,
    materializations INTEGER NOT NULL DEFAULT 0,
    materialized_at  REAL,
    last_pulled_at   REAL,
    created_at       REAL    NOT NULL
) WITHOUT ROWID;
CREATE INDEX build_by_base ON build(base_digest);

-- The ordered adapters of each build, with their weights.
CREATE TABLE build_adapter (
    build_digest   TEXT    NOT NULL REFERENCES build(digest) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    adapter_digest TEXT    NOT NULL REFERENCES manifest(digest),
    weight         REAL    NOT NULL,
    PRIMARY KEY (build_digest, position)
) WITHOUT ROWID;
CREATE INDEX build_adapter_by_adapter ON build_adapter(adapter_digest);

-- Every output tensor and file of a build's first materialization, in order. A rebuild must reproduce
-- these digests exactly.
CREATE TABLE build_output (
    build_digest TEXT    NOT NULL REFERENCES build(digest) ON DELETE CASCADE,
    kind         TEXT    NOT NULL CHECK (kind IN ('tensor', 'file')),
    position     INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    dtype        TEXT,
    shape        TEXT,
    file         TEXT,
    digest       TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    changed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (build_digest, kind, position)
) WITHOUT ROWID;

-- The blobs a materialized build holds beyond its base (the tensors its adapters changed).
CREATE TABLE build_blob (
    build_digest TEXT NOT NULL REFERENCES build(digest) ON DELETE CASCADE,
    blob_digest  TEXT NOT NULL REFERENCES blob(digest),
    PRIMARY KEY (build_digest, blob_digest)
) WITHOUT ROWID;
CREATE INDEX build_blob_by_blob ON build_blob(blob_digest);
