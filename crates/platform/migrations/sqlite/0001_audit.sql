-- The append-only audit log. Business transactions append rows unsealed (no sequence, no
-- hash); one sealer chains them afterwards in commit order, so writers never queue on the
-- chain's last row. With BEGIN IMMEDIATE, SQLite's AUTOINCREMENT id is commit order.
CREATE TABLE audit_events (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    event_time_us     INTEGER NOT NULL,
    subject           TEXT    NOT NULL,
    department        TEXT    NOT NULL DEFAULT '',
    acting_service    TEXT    NOT NULL DEFAULT '',
    method            TEXT    NOT NULL,
    resource          TEXT    NOT NULL DEFAULT '',
    outcome           TEXT    NOT NULL,
    reason            TEXT    NOT NULL DEFAULT '',
    purpose_code      TEXT    NOT NULL DEFAULT '',
    purpose_reference TEXT    NOT NULL DEFAULT '',
    trace_id          TEXT    NOT NULL DEFAULT '',
    sequence          INTEGER UNIQUE,
    prev_hash         TEXT,
    hash              TEXT
);
CREATE INDEX audit_events_unsealed ON audit_events (id) WHERE sequence IS NULL;
CREATE INDEX audit_events_time ON audit_events (event_time_us);
CREATE INDEX audit_events_subject ON audit_events (subject, event_time_us);
CREATE INDEX audit_events_resource ON audit_events (resource, event_time_us);

-- The chain's head, and the retention cut-off below which sealed rows may be deleted.
CREATE TABLE audit_chain (
    singleton           INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_sequence       INTEGER NOT NULL,
    last_hash           TEXT    NOT NULL,
    retention_cutoff_us INTEGER NOT NULL
);
INSERT INTO audit_chain (singleton, last_sequence, last_hash, retention_cutoff_us) VALUES (1, 0, 'genesis', 0);

-- Only sealing may change a row (filling sequence and hashes once); only retention may delete.
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
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.sequence IS NULL
  OR OLD.event_time_us >= (SELECT retention_cutoff_us FROM audit_chain WHERE singleton = 1)
BEGIN
    SELECT RAISE(ABORT, 'audit events are kept for the retention period');
END;
