-- The fidelity report of each build (how much of its adapters its output carries, per touched tensor and in
-- total, merged next to on the fly), as JSON, written by its first materialization and kept after eviction.

CREATE TABLE build_report (
    build_digest TEXT NOT NULL PRIMARY KEY REFERENCES build(digest) ON DELETE CASCADE,
    content      BLOB NOT NULL,
    created_at   REAL NOT NULL
) WITHOUT ROWID;
