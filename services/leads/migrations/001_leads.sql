CREATE TABLE leads (
    id                uuid PRIMARY KEY,
    org_id            text NOT NULL,
    name              text NOT NULL,
    phone             text NOT NULL,
    email             text,
    status            text NOT NULL DEFAULT 'new',
    status_changed_at timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    created_by        text NOT NULL
);
CREATE INDEX leads_org_page ON leads (org_id, created_at, id);
CREATE INDEX leads_org_status_page ON leads (org_id, status, created_at, id);

CREATE TABLE lead_status_history (
    id          bigserial PRIMARY KEY,
    lead_id     uuid NOT NULL REFERENCES leads (id),
    org_id      text NOT NULL,
    from_status text NOT NULL,
    to_status   text NOT NULL,
    changed_at  timestamptz NOT NULL,
    changed_by  text NOT NULL,
    command_id  text NOT NULL
);
CREATE INDEX lead_status_history_lead ON lead_status_history (lead_id, id);
