-- The contract event store: one stream per contract, versions 1..n without gaps. The primary
-- key is the optimistic-concurrency guard: two writers appending the same version collide.
CREATE TABLE contrato_evento (
    contrato_id UUID NOT NULL,
    version BIGINT NOT NULL,
    tipo TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    data TEXT NOT NULL,
    ocurrido_en TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (contrato_id, version)
);

-- A contract's state after `version` events, taken every N events; loading starts from the
-- latest one and applies the later events.
CREATE TABLE contrato_snapshot (
    contrato_id UUID NOT NULL,
    version BIGINT NOT NULL,
    schema_version INTEGER NOT NULL,
    state TEXT NOT NULL,
    tomado_en TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (contrato_id, version)
);

-- The read model: each contract's current state, written in the append's transaction.
CREATE TABLE contrato (
    contrato_id UUID PRIMARY KEY,
    partner_id UUID NOT NULL,
    onboarding_id UUID,
    tipo TEXT NOT NULL,
    monto_centavos BIGINT NOT NULL,
    moneda TEXT NOT NULL,
    condiciones TEXT,
    fecha_inicio DATE NOT NULL,
    fecha_fin DATE,
    estado TEXT NOT NULL,
    version BIGINT NOT NULL,
    fecha_creacion TIMESTAMPTZ NOT NULL,
    fecha_actualizacion TIMESTAMPTZ NOT NULL
);

CREATE INDEX contrato_por_partner ON contrato (partner_id, contrato_id);
CREATE INDEX contrato_por_estado ON contrato (estado, contrato_id);
CREATE INDEX contrato_por_tipo ON contrato (tipo, contrato_id);

-- The one contract created automatically for a partner (PartnerCreado), however often the
-- event is delivered. Contracts created by hand are not listed here.
CREATE TABLE contrato_partner (
    partner_id UUID PRIMARY KEY,
    contrato_id UUID NOT NULL
);

-- Contract templates per partner kind.
CREATE TABLE plantilla (
    tipo_partner TEXT PRIMARY KEY CHECK (tipo_partner IN ('AFILIADO', 'INFLUENCER', 'EMBAJADOR', 'CORPORATIVO')),
    tipo TEXT NOT NULL,
    monto_centavos BIGINT NOT NULL,
    moneda TEXT NOT NULL,
    condiciones TEXT,
    duracion_dias INTEGER NOT NULL,
    fecha_actualizacion TIMESTAMPTZ NOT NULL
);
