-- Onboardings the BFF started: the temporary id the client tracks, the saga that follows it,
-- and the validated request as sent in `CreatePartner` (JSON text).
CREATE TABLE onboarding (
    onboarding_id UUID PRIMARY KEY,
    saga_id UUID NOT NULL UNIQUE,
    nombre TEXT NOT NULL,
    email TEXT NOT NULL,
    tipo TEXT NOT NULL CHECK (tipo IN ('AFILIADO', 'INFLUENCER', 'EMBAJADOR', 'CORPORATIVO')),
    solicitud TEXT NOT NULL,
    creada_en TIMESTAMPTZ NOT NULL
);
