-- Blobs may use the exponent codec ('xans', ExponentCodec) besides 'raw' and byte-grouped zlib ('bgzip').
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt (foreign keys are checked after the
-- migration, once the new table has taken the old one's name).

CREATE TABLE blob_new (
    digest       TEXT    NOT NULL PRIMARY KEY CHECK (length(digest) = 64),
    logical_size INTEGER NOT NULL CHECK (logical_size >= 0),
    stored_size  INTEGER NOT NULL CHECK (stored_size >= 0),
    codec        TEXT    NOT NULL CHECK (codec IN ('raw', 'bgzip', 'xans')),
    created_at   REAL    NOT NULL
) WITHOUT ROWID;
INSERT INTO blob_new (digest, logical_size, stored_size, codec, created_at)
    SELECT digest, logical_size, stored_size, codec, created_at FROM blob;
DROP TABLE blob;
ALTER TABLE blob_new RENAME TO blob;
