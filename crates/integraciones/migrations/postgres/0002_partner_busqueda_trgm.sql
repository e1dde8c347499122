-- The `q` filter of the partner list is a substring match (`LIKE '%…%'`) on the lower-cased
-- name and e-mail, which no B-tree index serves: without these, every search and its total scan
-- the whole table (~100 ms and ~55 ms over 500,000 partners). Trigram indexes answer both
-- with a bitmap scan (~8-11 ms). pg_trgm ships with PostgreSQL's contrib and is a trusted
-- extension (13+): the database owner may create it without being a superuser.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX partner_nombre_busqueda_trgm ON partner USING gin (nombre_busqueda gin_trgm_ops);
CREATE INDEX partner_email_normalizado_trgm ON partner USING gin (email_normalizado gin_trgm_ops);
