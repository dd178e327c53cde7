-- A service's own projection of the leads it heard of (from `leads.created`, or
-- fetched once from the leads service when the projection lagged).
CREATE TABLE lead_directory (
    lead_id    uuid PRIMARY KEY,
    org_id     text NOT NULL,
    name       text NOT NULL,
    phone      text NOT NULL,
    learned_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lead_directory_phone ON lead_directory (phone);
