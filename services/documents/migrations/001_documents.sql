-- Files attached to leads. The bytes are in the blob store, named by their sha256 (shared/blobs.py).
CREATE TABLE documents (
    id           uuid PRIMARY KEY,
    org_id       text NOT NULL,
    lead_id      uuid NOT NULL,
    sha256       text NOT NULL,
    size         bigint NOT NULL,
    content_type text NOT NULL,
    filename     text NOT NULL,
    created_at   timestamptz NOT NULL,
    created_by   text NOT NULL,
    deleted_at   timestamptz,
    deleted_by   text
);
-- The same bytes attached twice to one lead are one document (while it is not deleted).
CREATE UNIQUE INDEX documents_one_per_lead ON documents (org_id, lead_id, sha256) WHERE deleted_at IS NULL;
CREATE INDEX documents_of_lead ON documents (org_id, lead_id, created_at);
-- The collector asks, for each old blob, whether any document refers to it.
CREATE INDEX documents_by_sha256 ON documents (sha256);
