-- The region an audited event concerns: the record's region where the call named one, else
-- the caller's scope ('' for the whole country). Auditors read only the events of their scope.
-- Sealed before this column existed, old rows have '' and their hashes stay as they were.
ALTER TABLE audit_events ADD COLUMN region TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_region ON audit_events (region, sequence);

CREATE OR REPLACE FUNCTION audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.sequence IS NOT NULL
           OR (NEW.id, NEW.xid, NEW.event_time_us, NEW.subject, NEW.department, NEW.acting_service,
               NEW.method, NEW.resource, NEW.outcome, NEW.reason, NEW.purpose_code,
               NEW.purpose_reference, NEW.trace_id, NEW.region)
              IS DISTINCT FROM
              (OLD.id, OLD.xid, OLD.event_time_us, OLD.subject, OLD.department, OLD.acting_service,
               OLD.method, OLD.resource, OLD.outcome, OLD.reason, OLD.purpose_code,
               OLD.purpose_reference, OLD.trace_id, OLD.region) THEN
            RAISE EXCEPTION 'audit events are append-only';
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.sequence IS NULL
       OR OLD.event_time_us >= (SELECT retention_cutoff_us FROM audit_chain WHERE singleton = 1) THEN
        RAISE EXCEPTION 'audit events are kept for the retention period';
    END IF;
    RETURN OLD;
END;
$$;
