-- A lead's own time zone (IANA name), when it was given: SMS campaigns respect quiet hours in it.
-- Without one, the SMS service reads the zone from the lead's phone number.
ALTER TABLE leads ADD COLUMN time_zone text;
