-- One row per send command (or per appointments.confirmed event): the attempt is
-- recorded here, committed, before the provider is called.
CREATE TABLE sms_messages (
    id                 uuid PRIMARY KEY,
    org_id             text NOT NULL,
    lead_id            uuid NOT NULL,
    command_id         text NOT NULL,
    to_phone           text NOT NULL,
    body               text NOT NULL,
    encoding           text NOT NULL,
    segments           integer NOT NULL,
    status             text NOT NULL,
    provider_sid       text UNIQUE,
    error_code         integer,
    attempt_started_at timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    sent_at            timestamptz,
    delivered_at       timestamptz,
    UNIQUE (org_id, command_id)
);
CREATE INDEX sms_messages_lead ON sms_messages (org_id, lead_id, created_at DESC);

CREATE TABLE sms_templates (
    id         uuid PRIMARY KEY,
    org_id     text NOT NULL,
    name       text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

-- STOP and START are about a phone number, whoever's lead it is.
CREATE TABLE sms_opt_outs (
    phone      text PRIMARY KEY,
    opted_out  boolean NOT NULL,
    keyword    text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
