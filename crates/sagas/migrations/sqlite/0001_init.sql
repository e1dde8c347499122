-- The onboarding saga log (DOMAIN §9): one row per saga with its current state, and every
-- message the saga saw or published, in order. `ultimo_evento_id`, `correlation_id` and
-- `traceparent` let messages the saga starts itself (review decisions, timeouts) join the
-- onboarding's causation chain and trace.
CREATE TABLE saga (
    saga_id BLOB PRIMARY KEY,
    onboarding_id BLOB NOT NULL UNIQUE,
    partner_id BLOB,
    contrato_id BLOB,
    nombre TEXT NOT NULL,
    email TEXT NOT NULL,
    estado TEXT NOT NULL CHECK (estado IN ('INICIADA', 'COMPLETADA', 'FALLIDA', 'PENDIENTE_REVISION')),
    causa TEXT,
    ultimo_paso TEXT NOT NULL,
    ultimo_evento_id BLOB NOT NULL,
    paso_deadline TEXT,
    correlation_id BLOB,
    traceparent TEXT,
    creada_en TEXT NOT NULL,
    actualizada_en TEXT NOT NULL,
    version INTEGER NOT NULL
);

-- Correlation of events that carry no `sagaid`, list filters, and the deadline worker's scan.
CREATE INDEX saga_partner ON saga (partner_id, saga_id);
CREATE INDEX saga_contrato ON saga (contrato_id);
CREATE INDEX saga_estado ON saga (estado, saga_id);
CREATE INDEX saga_deadline ON saga (paso_deadline) WHERE paso_deadline IS NOT NULL;

-- The log. `orden` is the saga's own sequence (rows of one saga are written under its lock),
-- so the story reads in the order the saga lived it whatever the clocks of its replicas say.
CREATE TABLE saga_evento (
    saga_evento_id BLOB PRIMARY KEY,
    saga_id BLOB NOT NULL REFERENCES saga (saga_id),
    orden INTEGER NOT NULL,
    event_id BLOB NOT NULL,
    tipo_evento TEXT NOT NULL,
    evento_data TEXT NOT NULL,
    estado_procesamiento TEXT NOT NULL CHECK (estado_procesamiento IN ('RECIBIDO', 'PROCESADO', 'ERROR')),
    error TEXT,
    recibido_en TEXT NOT NULL,
    procesado_en TEXT,
    partner_id BLOB,
    onboarding_id BLOB,
    UNIQUE (saga_id, event_id),
    UNIQUE (saga_id, orden)
);
