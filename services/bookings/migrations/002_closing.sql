-- Cancel, complete, no-show: when and by whom an appointment was closed, and why (cancel).
ALTER TABLE appointments
    ADD COLUMN closed_at     timestamptz,
    ADD COLUMN closed_by     text,
    ADD COLUMN cancel_reason text;
