-- The rule configuration: one row, written with the defaults on first start and changed by an
-- operator at run time. Lists are JSON arrays of strings.
CREATE TABLE regla_config (
    regla_config_id INTEGER PRIMARY KEY CHECK (regla_config_id = 1),
    limite_centavos INTEGER NOT NULL CHECK (limite_centavos >= 0),
    monedas_permitidas TEXT NOT NULL,
    partners_bloqueados TEXT NOT NULL,
    emails_bloqueados TEXT NOT NULL,
    fecha_actualizacion TEXT NOT NULL
);

-- Partners compliance has heard of (their PartnerCreado): rule 3 refuses any other.
CREATE TABLE partner_conocido (
    partner_id BLOB PRIMARY KEY,
    email TEXT NOT NULL,
    nombre TEXT NOT NULL,
    tipo TEXT NOT NULL,
    registrado_en TEXT NOT NULL
);

-- Exactly one decision per contract, however often its ContratoCreado is delivered. `dia` is
-- the UTC day of the decision, which the reports filter on.
CREATE TABLE evaluacion (
    contrato_id BLOB PRIMARY KEY,
    partner_id BLOB NOT NULL,
    onboarding_id BLOB,
    monto_centavos INTEGER NOT NULL,
    moneda TEXT NOT NULL,
    aprobado BOOLEAN NOT NULL,
    validaciones_pasadas TEXT NOT NULL,
    validacion_fallida TEXT,
    causa_rechazo TEXT,
    evaluado_en TEXT NOT NULL,
    dia TEXT NOT NULL
);

CREATE INDEX evaluacion_dia ON evaluacion (dia);

-- One financial account per partner, never duplicated. `impuestos` is a JSON array of
-- {nombre, porcentaje}.
CREATE TABLE cuenta_financiera (
    partner_id BLOB PRIMARY KEY,
    estado TEXT NOT NULL CHECK (estado IN ('ACTIVE', 'INACTIVE', 'SUSPENDED')),
    enable_at TEXT NOT NULL,
    moneda TEXT NOT NULL,
    metodo_pago TEXT NOT NULL CHECK (metodo_pago IN ('CREDIT_CARD', 'BANK_TRANSFER', 'PAYPAL')),
    impuestos TEXT NOT NULL,
    fecha_creacion TEXT NOT NULL,
    dia_creacion TEXT NOT NULL
);

CREATE INDEX cuenta_financiera_estado ON cuenta_financiera (estado, partner_id);
CREATE INDEX cuenta_financiera_dia ON cuenta_financiera (dia_creacion);
