-- Partner counts without a shared row to update. Migration 0003's triggers added to a shard
-- row of `partner_conteo` in the writing transaction; with 32 connections creating partners
-- that was a quarter of PostgreSQL's work per insert (a locking sub-select over 16 rows, the
-- update, and the dead versions those hot rows pile up), and the partner `POST` throughput
-- rose by a third without it. Writers now only append their change to
-- `partner_conteo_delta` (no index, no lock on anything shared), and the service folds the
-- appended rows into `partner_conteo` about once a second in one statement
-- (`storage::fold_counts`). A count is the sum over both tables in one statement, so it sees
-- a fold entirely or not at all, and stays exact between folds.

-- No partner write may slip between swapping the triggers and the fold below.
LOCK TABLE partner IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE partner_conteo_delta (
    tipo TEXT NOT NULL,
    estado TEXT NOT NULL,
    estado_kyc TEXT NOT NULL,
    n BIGINT NOT NULL
);

DROP TRIGGER partner_conteo_alta ON partner;
DROP TRIGGER partner_conteo_baja ON partner;
DROP TRIGGER partner_conteo_cambio ON partner;
DROP FUNCTION partner_conteo_alta();
DROP FUNCTION partner_conteo_baja();
DROP FUNCTION partner_conteo_cambio();
DROP FUNCTION partner_conteo_sumar(TEXT, TEXT, TEXT, BIGINT);

-- Per row: for the usual single-partner insert a row trigger costs less than a statement
-- trigger's transition table; a bulk load appends one row per partner, which the next fold
-- sums away.
CREATE FUNCTION partner_conteo_fila() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO partner_conteo_delta VALUES (NEW.tipo, NEW.estado, NEW.estado_kyc, 1);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO partner_conteo_delta VALUES (OLD.tipo, OLD.estado, OLD.estado_kyc, -1);
    ELSE
        INSERT INTO partner_conteo_delta VALUES
            (OLD.tipo, OLD.estado, OLD.estado_kyc, -1),
            (NEW.tipo, NEW.estado, NEW.estado_kyc, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER partner_conteo_alta AFTER INSERT ON partner
    FOR EACH ROW EXECUTE FUNCTION partner_conteo_fila();
CREATE TRIGGER partner_conteo_baja AFTER DELETE ON partner
    FOR EACH ROW EXECUTE FUNCTION partner_conteo_fila();
-- The `WHEN` clause keeps the function from running for the usual update (a name, an
-- integration) that leaves the three columns as they were.
CREATE TRIGGER partner_conteo_cambio AFTER UPDATE OF tipo, estado, estado_kyc ON partner
    FOR EACH ROW
    WHEN (OLD.tipo IS DISTINCT FROM NEW.tipo
        OR OLD.estado IS DISTINCT FROM NEW.estado
        OR OLD.estado_kyc IS DISTINCT FROM NEW.estado_kyc)
    EXECUTE FUNCTION partner_conteo_fila();

-- An emptied table counts zero everywhere, appended changes included.
CREATE OR REPLACE FUNCTION partner_conteo_vaciado() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM partner_conteo_delta;
    UPDATE partner_conteo SET n = 0 WHERE n <> 0;
    RETURN NULL;
END
$$;

-- Only the fold writes `partner_conteo` now, so the shards have nothing left to spread: each
-- combination's count moves to shard 0, the row the fold adds to.
UPDATE partner_conteo AS c SET n = s.n
  FROM (SELECT tipo, estado, estado_kyc, SUM(n) AS n FROM partner_conteo
         GROUP BY tipo, estado, estado_kyc) AS s
 WHERE c.shard = 0
   AND (c.tipo, c.estado, c.estado_kyc) = (s.tipo, s.estado, s.estado_kyc);
DELETE FROM partner_conteo WHERE shard <> 0;
