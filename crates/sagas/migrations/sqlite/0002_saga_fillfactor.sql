-- PostgreSQL leaves free space in the saga table's pages here (see its migration). SQLite
-- rewrites a row in place, so this migration changes nothing and exists to keep both ledgers
-- at one version.
SELECT 1;
