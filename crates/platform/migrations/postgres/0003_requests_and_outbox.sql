-- Idempotency: a request_id a subject used for a method, with a hash of the request and the
-- resource it created, so a retry gets the same answer and a reused id with another request is
-- refused.
CREATE TABLE request_ids (
    subject       TEXT   NOT NULL,
    method        TEXT   NOT NULL,
    request_id    TEXT   NOT NULL,
    request_hash  TEXT   NOT NULL,
    resource      TEXT   NOT NULL,
    created_us    BIGINT NOT NULL,
    PRIMARY KEY (subject, method, request_id)
);

-- The change feed's outbox, written in the same transaction as the change. Ids are taken
-- before commit and so commit out of order; a reader orders by (xid, id) and reads only below
-- the oldest running transaction, so nothing can later appear behind its cursor.
CREATE TABLE outbox_events (
    id             BIGSERIAL PRIMARY KEY,
    xid            xid8   NOT NULL DEFAULT pg_current_xact_id(),
    kind           TEXT   NOT NULL,
    resource       TEXT   NOT NULL,
    regions        TEXT   NOT NULL,
    effective_date TEXT,
    detail         TEXT   NOT NULL,
    recorded_us    BIGINT NOT NULL
);
CREATE INDEX outbox_events_order ON outbox_events (xid, id);
