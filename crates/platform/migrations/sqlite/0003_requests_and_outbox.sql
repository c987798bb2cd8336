-- Idempotency: a request_id a subject used for a method, with a hash of the request and the
-- resource it created, so a retry gets the same answer and a reused id with another request is
-- refused.
CREATE TABLE request_ids (
    subject       TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    request_id    TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    resource      TEXT    NOT NULL,
    created_us    INTEGER NOT NULL,
    PRIMARY KEY (subject, method, request_id)
);

-- The change feed's outbox, written in the same transaction as the change. With BEGIN
-- IMMEDIATE, SQLite's AUTOINCREMENT id is commit order, so the cursor is the id.
CREATE TABLE outbox_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT    NOT NULL,
    resource       TEXT    NOT NULL,
    regions        TEXT    NOT NULL,
    effective_date TEXT,
    detail         TEXT    NOT NULL,
    recorded_us    INTEGER NOT NULL
);
