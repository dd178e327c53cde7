-- Proposals, their payments and refunds, contracts, and the deal timeline of each lead.
-- Money is bigint minor units (cents), never a float. The paid totals are columns kept by
-- the statement that writes the payment or refund (repository.py); the CHECKs are the last
-- word on "never overpaid, never refunded beyond what was paid", whatever the code above does.
CREATE TABLE proposals (
    id             uuid PRIMARY KEY,
    org_id         text NOT NULL,
    lead_id        uuid NOT NULL,
    title          text NOT NULL,
    amount_minor   bigint NOT NULL CHECK (amount_minor > 0),
    currency       text NOT NULL,
    valid_until    timestamptz NOT NULL,
    notes          text,
    status         text NOT NULL DEFAULT 'sent' CHECK (status IN ('sent', 'accepted', 'declined')),
    -- payments less refunds
    paid_minor     bigint NOT NULL DEFAULT 0 CHECK (paid_minor BETWEEN 0 AND amount_minor),
    created_at     timestamptz NOT NULL,
    created_by     text NOT NULL,
    decided_at     timestamptz,
    decided_by     text,
    decline_reason text
);
CREATE INDEX proposals_org_lead ON proposals (org_id, lead_id, created_at DESC);

CREATE TABLE payments (
    id                 uuid PRIMARY KEY,
    org_id             text NOT NULL,
    proposal_id        uuid NOT NULL REFERENCES proposals (id),
    amount_minor       bigint NOT NULL CHECK (amount_minor > 0),
    currency           text NOT NULL,
    method             text NOT NULL,
    external_reference text NOT NULL,
    refunded_minor     bigint NOT NULL DEFAULT 0 CHECK (refunded_minor BETWEEN 0 AND amount_minor),
    recorded_at        timestamptz NOT NULL,
    recorded_by        text NOT NULL
);
-- The same reference twice in an organisation is one payment.
CREATE UNIQUE INDEX payments_org_reference ON payments (org_id, external_reference);
CREATE INDEX payments_proposal ON payments (proposal_id, recorded_at);

CREATE TABLE refunds (
    id           uuid PRIMARY KEY,
    org_id       text NOT NULL,
    payment_id   uuid NOT NULL REFERENCES payments (id),
    proposal_id  uuid NOT NULL REFERENCES proposals (id),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency     text NOT NULL,
    reason       text,
    refunded_at  timestamptz NOT NULL,
    refunded_by  text NOT NULL
);
CREATE INDEX refunds_proposal ON refunds (proposal_id, refunded_at);

CREATE TABLE contracts (
    id           uuid PRIMARY KEY,
    org_id       text NOT NULL,
    proposal_id  uuid NOT NULL REFERENCES proposals (id),
    lead_id      uuid NOT NULL,
    status       text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'sent', 'signed', 'void')),
    -- the proposal's terms when the contract was made
    title        text NOT NULL,
    amount_minor bigint NOT NULL,
    currency     text NOT NULL,
    valid_until  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    created_by   text NOT NULL,
    sent_at      timestamptz,
    signed_at    timestamptz,
    signer_name  text,
    voided_at    timestamptz,
    void_reason  text
);
-- At most one contract per proposal that is not void.
CREATE UNIQUE INDEX contracts_one_open ON contracts (proposal_id) WHERE status <> 'void';

CREATE TABLE timeline (
    id      bigserial PRIMARY KEY,
    org_id  text NOT NULL,
    lead_id uuid NOT NULL,
    at      timestamptz NOT NULL,
    type    text NOT NULL,
    summary text NOT NULL,
    ref_id  text NOT NULL,
    by      text NOT NULL
);
CREATE INDEX timeline_org_lead ON timeline (org_id, lead_id, at, id);
