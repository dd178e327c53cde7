CREATE TABLE appointments (
    id               uuid PRIMARY KEY,
    org_id           text NOT NULL,
    lead_id          uuid NOT NULL,
    starts_at        timestamptz NOT NULL,
    duration_minutes integer NOT NULL,
    title            text,
    status           text NOT NULL DEFAULT 'scheduled',
    confirmed_at     timestamptz,
    confirmed_by     text,
    notes            text,
    created_at       timestamptz NOT NULL,
    created_by       text NOT NULL
);
CREATE INDEX appointments_org_lead ON appointments (org_id, lead_id, starts_at);
