-- Partners. `email_normalizado` (lower-cased by the service) carries the uniqueness rule and
-- `nombre_busqueda` (lower-cased name) the `q` search, so both backends compare the same text.
CREATE TABLE partner (
    partner_id UUID PRIMARY KEY,
    nombre TEXT NOT NULL,
    nombre_busqueda TEXT NOT NULL,
    email TEXT NOT NULL,
    email_normalizado TEXT NOT NULL,
    telefono TEXT,
    direccion TEXT,
    tipo TEXT NOT NULL CHECK (tipo IN ('AFILIADO', 'INFLUENCER', 'EMBAJADOR', 'CORPORATIVO')),
    estado TEXT NOT NULL CHECK (estado IN ('ACTIVO', 'INACTIVO', 'SUSPENDIDO', 'ELIMINADO')),
    estado_kyc TEXT NOT NULL CHECK (estado_kyc IN ('PENDIENTE', 'APROBADO', 'RECHAZADO', 'REQUIERE_DOCUMENTOS')),
    documentos_kyc TEXT,
    onboarding_id UUID,
    fecha_creacion TIMESTAMPTZ NOT NULL,
    fecha_actualizacion TIMESTAMPTZ NOT NULL
);

-- One live partner per e-mail; a deleted partner frees its address.
CREATE UNIQUE INDEX partner_email_vivo ON partner (email_normalizado) WHERE estado <> 'ELIMINADO';
-- One partner per onboarding, however often the saga's command is delivered.
CREATE UNIQUE INDEX partner_onboarding ON partner (onboarding_id) WHERE onboarding_id IS NOT NULL;
-- List filters, each followed by the keyset column.
CREATE INDEX partner_estado ON partner (estado, partner_id);
CREATE INDEX partner_tipo ON partner (tipo, partner_id);
CREATE INDEX partner_estado_kyc ON partner (estado_kyc, partner_id);

-- Technical integrations of a partner. `configuracion` may hold secrets and is never returned.
CREATE TABLE integracion (
    integracion_id UUID PRIMARY KEY,
    partner_id UUID NOT NULL REFERENCES partner (partner_id),
    tipo TEXT NOT NULL CHECK (tipo IN ('API', 'WEBHOOK', 'BATCH', 'REAL_TIME')),
    nombre TEXT NOT NULL,
    descripcion TEXT,
    configuracion TEXT NOT NULL,
    activa BOOLEAN NOT NULL,
    fecha_creacion TIMESTAMPTZ NOT NULL,
    fecha_revocacion TIMESTAMPTZ,
    motivo_revocacion TEXT
);

CREATE INDEX integracion_partner ON integracion (partner_id, integracion_id);
