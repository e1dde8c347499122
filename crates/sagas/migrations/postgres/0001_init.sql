-- The onboarding saga log (DOMAIN §9): one row per saga with its current state, and every
-- message the saga saw or published, in order. `ultimo_evento_id`, `correlation_id` and
-- `traceparent` let messages the saga starts itself (review decisions, timeouts) join the
-- onboarding's causation chain and trace.
CREATE TABLE saga (
    saga_id UUID PRIMARY KEY,
    onboarding_id UUID NOT NULL UNIQUE,
    partner_id UUID,
    contrato_id UUID,
    nombre TEXT NOT NULL,
    email TEXT NOT NULL,
    estado TEXT NOT NULL CHECK (estado IN ('INICIADA', 'COMPLETADA', 'FALLIDA', 'PENDIENTE_REVISION')),
    causa TEXT,
    ultimo_paso TEXT NOT NULL,
    ultimo_evento_id UUID NOT NULL,
    paso_deadline TIMESTAMPTZ,
    correlation_id UUID,
    traceparent TEXT,
    creada_en TIMESTAMPTZ NOT NULL,
    actualizada_en TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);

-- Correlation of events that carry no `sagaid`, list filters, and the deadline worker's scan.
CREATE INDEX saga_partner ON saga (partner_id, saga_id);
CREATE INDEX saga_contrato ON saga (contrato_id);
CREATE INDEX saga_estado ON saga (estado, saga_id);
CREATE INDEX saga_deadline ON saga (paso_deadline) WHERE paso_deadline IS NOT NULL;

-- The log. `orden` is the saga's own sequence (rows of one saga are written under its lock),
-- so the story reads in the order the saga lived it whatever the clocks of its replicas say.
CREATE TABLE saga_evento (
    saga_evento_id UUID PRIMARY KEY,
    saga_id UUID NOT NULL REFERENCES saga (saga_id),
    orden BIGINT NOT NULL,
    event_id UUID NOT NULL,
    tipo_evento TEXT NOT NULL,
    evento_data TEXT NOT NULL,
    estado_procesamiento TEXT NOT NULL CHECK (estado_procesamiento IN ('RECIBIDO', 'PROCESADO', 'ERROR')),
    error TEXT,
    recibido_en TIMESTAMPTZ NOT NULL,
    procesado_en TIMESTAMPTZ,
    partner_id UUID,
    onboarding_id UUID,
    UNIQUE (saga_id, event_id),
    UNIQUE (saga_id, orden)
);
