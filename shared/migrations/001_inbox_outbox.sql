-- The inbox: one row per command message id (per organisation: one organisation's
-- ids never collide with another's), written in the same transaction as the
-- command's effect, holding the reply to give again on redelivery.
CREATE TABLE inbox (
    org_id       text NOT NULL,
    message_id   text NOT NULL,
    command      text NOT NULL,
    fingerprint  text NOT NULL,
    status       integer NOT NULL,
    reply        json NOT NULL,  -- json, not jsonb: the text as given, so a replay is byte-identical
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, message_id)
);
CREATE INDEX inbox_created_at ON inbox (created_at);

-- Commands that exhausted their retries: the status resource's failure answer
-- until an operator replays them (a later inbox row then takes precedence).
CREATE TABLE parked (
    org_id     text NOT NULL,
    message_id text NOT NULL,
    reply      json NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, message_id)
);

-- The outbox: events written in the same transaction as the change, published by
-- the relay, deleted once the broker confirmed them.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL,
    routing_key     text NOT NULL,
    payload         jsonb NOT NULL,
    headers         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id);

-- Wake the relay when a transaction that wrote events commits (NOTIFY is
-- delivered at commit, and not at all on rollback). One per statement.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
