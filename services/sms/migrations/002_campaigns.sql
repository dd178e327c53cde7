-- SMS campaigns: a template texted to an audience, one target row per lead (recorded at start).
CREATE TABLE campaigns (
    id              uuid PRIMARY KEY,
    org_id          text NOT NULL,
    name            text NOT NULL,
    template_id     uuid NOT NULL REFERENCES sms_templates (id),
    status          text NOT NULL,
    audience        jsonb NOT NULL,
    send_from       time NOT NULL,
    send_until      time NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    -- The last campaigns.progress published (the throttle), and the counts it said.
    progress_at     timestamptz,
    progress_counts jsonb
);
CREATE INDEX campaigns_org ON campaigns (org_id, created_at DESC, id);
CREATE INDEX campaigns_open ON campaigns (status) WHERE status IN ('running', 'paused');

-- One row per (campaign, lead): its SMS command's message id is derived from the pair (command_id),
-- so however often it is published, the SMS inbox makes it one SMS.
CREATE TABLE campaign_targets (
    campaign_id   uuid NOT NULL REFERENCES campaigns (id),
    lead_id       uuid NOT NULL,
    command_id    text NOT NULL UNIQUE,
    time_zone     text NOT NULL,          -- resolved at start: the lead's own, else its phone number's
    state         text NOT NULL,          -- waiting, sending, sent, skipped, failed
    next_at       timestamptz,            -- a waiting target goes no earlier (quiet hours, a retry later)
    dispatched_at timestamptz,            -- when its command was last published
    parks         integer NOT NULL DEFAULT 0,
    sms_id        uuid,
    reason        text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, lead_id)
);
CREATE INDEX campaign_targets_due ON campaign_targets (campaign_id, next_at) WHERE state = 'waiting';
CREATE INDEX campaign_targets_sending ON campaign_targets (dispatched_at) WHERE state = 'sending';

-- The send rate of each organisation: a token bucket shared by every SMS instance (its row lock).
CREATE TABLE campaign_pace (
    org_id  text PRIMARY KEY,
    tokens  double precision NOT NULL,
    at      timestamptz NOT NULL
);
