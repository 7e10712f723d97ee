-- Narrow indexes for the columns that listings and lineage read of many manifests at once.
--
-- A manifest row keeps its whole JSON inline, so the manifest and adapter tables have wide rows (a manifest
-- may even spill onto an overflow page, with its size and base stored after the JSON): reading a few columns
-- of a hundred thousand manifests through them touches a page or more per manifest. These indexes hold only
-- what `ls` and `lineage` read, a few dozen entries per page.
CREATE INDEX manifest_summary ON manifest(digest, kind, logical_size, base_digest);
CREATE INDEX adapter_rank ON adapter(manifest_digest, rank);
