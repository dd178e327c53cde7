-- The lead's own time zone (IANA name) when it has one (`leads.created` carries it); NULL otherwise.
ALTER TABLE lead_directory ADD COLUMN time_zone text;
