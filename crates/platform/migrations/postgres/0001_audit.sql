-- The append-only audit log. Business transactions append rows unsealed (no sequence, no
-- hash); one sealer chains them afterwards, ordered by (xid, id) and only below the oldest
-- running transaction, so nothing can later appear behind a sealed row and writers never
-- queue on the chain's last row.
CREATE TABLE audit_events (
    id                BIGSERIAL PRIMARY KEY,
    xid               xid8   NOT NULL DEFAULT pg_current_xact_id(),
    event_time_us     BIGINT NOT NULL,
    subject           TEXT   NOT NULL,
    department        TEXT   NOT NULL DEFAULT '',
    acting_service    TEXT   NOT NULL DEFAULT '',
    method            TEXT   NOT NULL,
    resource          TEXT   NOT NULL DEFAULT '',
    outcome           TEXT   NOT NULL,
    reason            TEXT   NOT NULL DEFAULT '',
    purpose_code      TEXT   NOT NULL DEFAULT '',
    purpose_reference TEXT   NOT NULL DEFAULT '',
    trace_id          TEXT   NOT NULL DEFAULT '',
    sequence          BIGINT UNIQUE,
    prev_hash         TEXT,
    hash              TEXT
);
CREATE INDEX audit_events_unsealed ON audit_events (xid, id) WHERE sequence IS NULL;
CREATE INDEX audit_events_time ON audit_events (event_time_us);
CREATE INDEX audit_events_subject ON audit_events (subject, event_time_us);
CREATE INDEX audit_events_resource ON audit_events (resource, event_time_us);

-- The chain's head, and the retention cut-off below which sealed rows may be deleted.
CREATE TABLE audit_chain (
    singleton           INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_sequence       BIGINT  NOT NULL,
    last_hash           TEXT    NOT NULL,
    retention_cutoff_us BIGINT  NOT NULL
);
INSERT INTO audit_chain (singleton, last_sequence, last_hash, retention_cutoff_us) VALUES (1, 0, 'genesis', 0);

-- Only sealing may change a row (filling sequence and hashes once); only retention may delete.
CREATE FUNCTION audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.sequence IS NOT NULL
           OR (NEW.id, NEW.xid, NEW.event_time_us, NEW.subject, NEW.department, NEW.acting_service,
               NEW.method, NEW.resource, NEW.outcome, NEW.reason, NEW.purpose_code,
               NEW.purpose_reference, NEW.trace_id)
              IS DISTINCT FROM
              (OLD.id, OLD.xid, OLD.event_time_us, OLD.subject, OLD.department, OLD.acting_service,
               OLD.method, OLD.resource, OLD.outcome, OLD.reason, OLD.purpose_code,
               OLD.purpose_reference, OLD.trace_id) THEN
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
CREATE TRIGGER audit_events_guard BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_guard();
