-- Every control command carries a deadline; the root never carries one out after it (security
-- review, issue 15, finding 7: an interrupted ctl left its command pending, and it ran later).
--
-- expires_at is set by the issuer, on the database clock: issued_at + the issuer's acknowledgement
-- timeout. The root takes a command only while clock_timestamp() < expires_at, in the transaction
-- that carries it out, and marks an overdue one 'expired' instead (persistence/control.py).
--
-- Rows from before this migration have no deadline. A command still pending now was issued to a
-- system that has since stopped, or by a ctl that was interrupted; nobody waits for it any more,
-- so it is expired here and never carried out. Handled rows keep expires_at NULL ("unknown"):
-- only a row that is no longer pending may lack a deadline.
ALTER TABLE control_commands ADD COLUMN expires_at timestamptz;

UPDATE control_commands
   SET status = 'expired', handled_at = now(), handled_by = 'migration 0008',
       result = 'not carried out: issued before control commands had deadlines'
 WHERE status = 'pending';

ALTER TABLE control_commands
    ADD CONSTRAINT control_commands_pending_has_deadline CHECK (status <> 'pending' OR expires_at IS NOT NULL),
    ADD CONSTRAINT control_commands_deadline_after_issue CHECK (expires_at IS NULL OR expires_at > issued_at);
