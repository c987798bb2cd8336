-- Seals become rows of their own. Sealing used to update every event with its sequence and
-- hashes: a second version of each row and a new entry in each of its seven indexes (the
-- update could not be HOT, `sequence` being indexed), as much work as writing the event. Now an
-- event is written once and never changed; the sealer appends a seal per event, and finds the
-- events still to seal past the chain head's (xid, id) instead of by a NULL sequence.
CREATE TABLE audit_seals (
    sequence  BIGINT PRIMARY KEY,
    event_id  BIGINT NOT NULL UNIQUE,
    prev_hash TEXT   NOT NULL,
    hash      TEXT   NOT NULL
);
INSERT INTO audit_seals (sequence, event_id, prev_hash, hash)
SELECT sequence, id, prev_hash, hash FROM audit_events WHERE sequence IS NOT NULL;

-- The last sealed event: events were sealed in (xid, id) order, so it is the greatest sealed.
ALTER TABLE audit_chain
    ADD COLUMN last_xid      xid8   NOT NULL DEFAULT '0',
    ADD COLUMN last_event_id BIGINT NOT NULL DEFAULT 0;
UPDATE audit_chain SET last_xid = last.xid, last_event_id = last.id
FROM (SELECT xid, id FROM audit_events WHERE sequence IS NOT NULL ORDER BY xid DESC, id DESC LIMIT 1) AS last
WHERE singleton = 1;

DROP TRIGGER audit_events_guard ON audit_events;
DROP FUNCTION audit_events_guard();
-- Dropping the columns drops their indexes: the unique sequence, the unsealed partial index
-- and (region, sequence).
ALTER TABLE audit_events DROP COLUMN sequence, DROP COLUMN prev_hash, DROP COLUMN hash;
CREATE INDEX audit_events_order ON audit_events (xid, id);
CREATE INDEX audit_events_region ON audit_events (region, id);

-- An event is never changed; only retention deletes, and only sealed events past the cut-off.
CREATE FUNCTION audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'audit events are append-only';
    END IF;
    IF EXISTS (SELECT 1 FROM audit_chain
               WHERE singleton = 1
                 AND ((OLD.xid, OLD.id) > (last_xid, last_event_id) OR OLD.event_time_us >= retention_cutoff_us)) THEN
        RAISE EXCEPTION 'audit events are kept for the retention period';
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER audit_events_guard BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_guard();

-- A seal is never changed, and goes only after its event.
CREATE FUNCTION audit_seals_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'audit seals are append-only';
    END IF;
    IF EXISTS (SELECT 1 FROM audit_events WHERE id = OLD.event_id) THEN
        RAISE EXCEPTION 'an audit seal is kept while its event is';
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER audit_seals_guard BEFORE UPDATE OR DELETE ON audit_seals
FOR EACH ROW EXECUTE FUNCTION audit_seals_guard();
