-- Partner counts per (tipo, estado, estado_kyc), so the list's exact `total` for a filter on
-- those columns alone is a sum over a few rows instead of a COUNT(*) over the whole table.
-- Triggers keep the counts in the writing transaction, so every write path keeps them exact.
-- The table matches PostgreSQL's; SQLite's single writer leaves nothing to spread, so every
-- count lives in shard 0.

CREATE TABLE partner_conteo (
    tipo TEXT NOT NULL,
    estado TEXT NOT NULL,
    estado_kyc TEXT NOT NULL,
    shard INTEGER NOT NULL CHECK (shard BETWEEN 0 AND 15),
    n INTEGER NOT NULL,
    PRIMARY KEY (tipo, estado, estado_kyc, shard)
);

CREATE TRIGGER partner_conteo_alta AFTER INSERT ON partner
BEGIN
    INSERT INTO partner_conteo (tipo, estado, estado_kyc, shard, n)
    VALUES (NEW.tipo, NEW.estado, NEW.estado_kyc, 0, 1)
    ON CONFLICT (tipo, estado, estado_kyc, shard) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER partner_conteo_baja AFTER DELETE ON partner
BEGIN
    UPDATE partner_conteo SET n = n - 1
     WHERE tipo = OLD.tipo AND estado = OLD.estado AND estado_kyc = OLD.estado_kyc AND shard = 0;
END;

-- The `WHEN` clause skips the usual update (a name, an integration) that leaves the three
-- columns as they were.
CREATE TRIGGER partner_conteo_cambio AFTER UPDATE OF tipo, estado, estado_kyc ON partner
WHEN OLD.tipo IS NOT NEW.tipo OR OLD.estado IS NOT NEW.estado OR OLD.estado_kyc IS NOT NEW.estado_kyc
BEGIN
    UPDATE partner_conteo SET n = n - 1
     WHERE tipo = OLD.tipo AND estado = OLD.estado AND estado_kyc = OLD.estado_kyc AND shard = 0;
    INSERT INTO partner_conteo (tipo, estado, estado_kyc, shard, n)
    VALUES (NEW.tipo, NEW.estado, NEW.estado_kyc, 0, 1)
    ON CONFLICT (tipo, estado, estado_kyc, shard) DO UPDATE SET n = n + 1;
END;

-- The partners that exist before the triggers did.
INSERT INTO partner_conteo (tipo, estado, estado_kyc, shard, n)
SELECT tipo, estado, estado_kyc, 0, COUNT(*) FROM partner
GROUP BY tipo, estado, estado_kyc;
