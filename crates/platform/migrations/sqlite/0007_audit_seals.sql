-- Seals become rows of their own. Sealing used to update every event with its sequence and
-- hashes, writing each row and its indexes twice. Now an event is written once and never
-- changed; the sealer appends a seal per event and finds the events still to seal past the
-- chain head's event id (with BEGIN IMMEDIATE, ids are in commit order).
CREATE TABLE audit_seals (
    sequence  INTEGER PRIMARY KEY,
    event_id  INTEGER NOT NULL UNIQUE,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
INSERT INTO audit_seals (sequence, event_id, prev_hash, hash)
SELECT sequence, id, prev_hash, hash FROM audit_events WHERE sequence IS NOT NULL;

ALTER TABLE audit_chain ADD COLUMN last_event_id INTEGER NOT NULL DEFAULT 0;
UPDATE audit_chain SET last_event_id = COALESCE((SELECT MAX(id) FROM audit_events WHERE sequence IS NOT NULL), 0)
WHERE singleton = 1;

-- SQLite cannot drop a UNIQUE column: the events move to a table without the seal's columns.
DROP TRIGGER audit_events_no_update;
DROP TRIGGER audit_events_no_delete;
CREATE TABLE audit_events_sealed_apart (
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
    region            TEXT    NOT NULL DEFAULT ''
);
INSERT INTO audit_events_sealed_apart (id, event_time_us, subject, department, acting_service, method, resource,
    outcome, reason, purpose_code, purpose_reference, trace_id, region)
SELECT id, event_time_us, subject, department, acting_service, method, resource,
    outcome, reason, purpose_code, purpose_reference, trace_id, region FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_sealed_apart RENAME TO audit_events;
CREATE INDEX audit_events_time ON audit_events (event_time_us);
CREATE INDEX audit_events_subject ON audit_events (subject, event_time_us);
CREATE INDEX audit_events_resource ON audit_events (resource, event_time_us);
CREATE INDEX audit_events_region ON audit_events (region, id);

-- An event is never changed; only retention deletes, and only sealed events past the cut-off.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.id > (SELECT last_event_id FROM audit_chain WHERE singleton = 1)
  OR OLD.event_time_us >= (SELECT retention_cutoff_us FROM audit_chain WHERE singleton = 1)
BEGIN
    SELECT RAISE(ABORT, 'audit events are kept for the retention period');
END;

-- A seal is never changed, and goes only after its event.
CREATE TRIGGER audit_seals_no_update BEFORE UPDATE ON audit_seals
BEGIN
    SELECT RAISE(ABORT, 'audit seals are append-only');
END;
CREATE TRIGGER audit_seals_no_delete BEFORE DELETE ON audit_seals
WHEN EXISTS (SELECT 1 FROM audit_events WHERE id = OLD.event_id)
BEGIN
    SELECT RAISE(ABORT, 'an audit seal is kept while its event is');
END;
