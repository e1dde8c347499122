-- PostgreSQL's writers append their count changes to `partner_conteo_delta`, folded into
-- `partner_conteo` by the service (see the PostgreSQL migration). SQLite's single writer has
-- no shared row to wait on, so its triggers keep adding to `partner_conteo` directly and this
-- table stays empty; it exists so that both backends count with the same statement.
CREATE TABLE partner_conteo_delta (
    tipo TEXT NOT NULL,
    estado TEXT NOT NULL,
    estado_kyc TEXT NOT NULL,
    n INTEGER NOT NULL
);
