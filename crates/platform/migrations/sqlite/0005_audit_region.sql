-- The region an audited event concerns: the record's region where the call named one, else
-- the caller's scope ('' for the whole country). Auditors read only the events of their scope.
-- Sealed before this column existed, old rows have '' and their hashes stay as they were.
ALTER TABLE audit_events ADD COLUMN region TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_region ON audit_events (region, sequence);

DROP TRIGGER audit_events_no_update;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN OLD.sequence IS NOT NULL
  OR NEW.id IS NOT OLD.id
  OR NEW.event_time_us IS NOT OLD.event_time_us
  OR NEW.subject IS NOT OLD.subject
  OR NEW.department IS NOT OLD.department
  OR NEW.acting_service IS NOT OLD.acting_service
  OR NEW.method IS NOT OLD.method
  OR NEW.resource IS NOT OLD.resource
  OR NEW.outcome IS NOT OLD.outcome
  OR NEW.reason IS NOT OLD.reason
  OR NEW.purpose_code IS NOT OLD.purpose_code
  OR NEW.purpose_reference IS NOT OLD.purpose_reference
  OR NEW.trace_id IS NOT OLD.trace_id
  OR NEW.region IS NOT OLD.region
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
