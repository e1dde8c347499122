-- Programs of the brands. Money is kept in hundredths (exact), dates as dates.
CREATE TABLE programa (
    programa_id BLOB PRIMARY KEY,
    nombre TEXT NOT NULL,
    brand_id TEXT NOT NULL,
    tipo TEXT NOT NULL CHECK (tipo IN ('AFILIADOS', 'INFLUENCERS', 'ADVOCACY', 'SAAS')),
    estado TEXT NOT NULL CHECK (estado IN ('BORRADOR', 'ACTIVO', 'SUSPENDIDO', 'CERRADO')),
    vigencia_inicio TEXT NOT NULL,
    vigencia_fin TEXT NOT NULL,
    term_modelo TEXT NOT NULL CHECK (term_modelo IN ('CPA', 'CPL', 'CPC')),
    term_moneda TEXT NOT NULL,
    term_tarifa_base_centavos BIGINT NOT NULL,
    term_tope_centavos BIGINT,
    presupuesto_centavos BIGINT,
    fecha_creacion TEXT NOT NULL,
    fecha_actualizacion TEXT NOT NULL
);

CREATE INDEX programa_estado ON programa (estado, programa_id);
CREATE INDEX programa_brand ON programa (brand_id, programa_id);

-- One affiliation per partner and program.
CREATE TABLE afiliacion (
    programa_id BLOB NOT NULL REFERENCES programa (programa_id),
    afiliado_id BLOB NOT NULL,
    estado TEXT NOT NULL CHECK (estado IN ('PENDIENTE', 'ACTIVA', 'SUSPENDIDA', 'BAJA')),
    fecha_alta TEXT NOT NULL,
    fecha_baja TEXT,
    PRIMARY KEY (programa_id, afiliado_id)
);

-- A partner's affiliations, for its programs and for the consumers that change them.
CREATE INDEX afiliacion_afiliado ON afiliacion (afiliado_id, programa_id);

-- What this service learned about partners from their events. `elegible`: the onboarding
-- completed (the contract is active); `bloqueado`: deleted or deactivated, for good.
-- `elegibilidad_en` is the time of the event that last set `elegible`, so an older event
-- arriving late on another topic cannot undo a newer one.
CREATE TABLE partner_conocido (
    partner_id BLOB PRIMARY KEY,
    elegible BOOLEAN NOT NULL,
    bloqueado BOOLEAN NOT NULL,
    email TEXT,
    nombre TEXT,
    elegibilidad_en TEXT,
    actualizado_en TEXT NOT NULL
);

-- E-mails to deliver. (evento_id, destinatario) is unique: a redelivered event never makes a
-- second notification. A delivery claim is a lease (`reclamada_por`, `reclamada_hasta`).
CREATE TABLE notificacion (
    notificacion_id BLOB PRIMARY KEY,
    evento_id BLOB NOT NULL,
    tipo_evento TEXT NOT NULL,
    destinatario TEXT NOT NULL,
    asunto TEXT NOT NULL,
    contenido TEXT NOT NULL,
    prioridad TEXT NOT NULL CHECK (prioridad IN ('ALTA', 'NORMAL', 'BAJA')),
    estado TEXT NOT NULL CHECK (estado IN ('PENDIENTE', 'ENVIADA', 'FALLIDA')),
    intentos INTEGER NOT NULL,
    ultimo_error TEXT,
    creada_en TEXT NOT NULL,
    enviada_en TEXT,
    proximo_intento TEXT NOT NULL,
    reclamada_por BLOB,
    reclamada_hasta TEXT,
    UNIQUE (evento_id, destinatario)
);

CREATE INDEX notificacion_pendiente ON notificacion (estado, proximo_intento);
CREATE INDEX notificacion_destinatario ON notificacion (destinatario, notificacion_id);
