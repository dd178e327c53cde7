-- The campaign list is paged newest first by (created_at, id) (campaign_repository.of_org): an index in that
-- order, scanned backwards, takes a page after a cursor without filtering the pages before it.
DROP INDEX IF EXISTS campaigns_org;
CREATE INDEX campaigns_org ON campaigns (org_id, created_at, id);
