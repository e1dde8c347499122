-- PostgreSQL adds trigram indexes for the partner list's `q` substring search here. SQLite has
-- no equivalent index for `LIKE '%…%'`; an embedded deployment's partner table is small enough
-- to scan, so this migration changes nothing and exists to keep both ledgers at one version.
SELECT 1;
