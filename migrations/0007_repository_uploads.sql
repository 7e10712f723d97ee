-- Blobs a registry received by upload for a repository. Where tokens are limited to namespaces, a manifest
-- pushed to a repository may name only blobs the pusher can read or uploaded for that repository: knowing
-- another team's digest is not enough to get its bytes through a manifest, while uploading the bytes (which
-- proves holding them; the blob is still stored once) is.
CREATE TABLE repository_upload (
    repository  TEXT NOT NULL,
    blob_digest TEXT NOT NULL REFERENCES blob(digest) ON DELETE CASCADE,
    PRIMARY KEY (repository, blob_digest)
) WITHOUT ROWID;
