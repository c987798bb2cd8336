-- The Shandong–Chongqing exchange. The message log keeps every message either way with its
-- signature, the receiver's receipt, time, partner and result; bodies are encrypted (they hold
-- citizen IDs) and their SHA-256 is what the signatures and the chain cover. Rows are written
-- whole, in the transaction that acts on the message, and chained afterwards in commit order
-- by one sealer (as the audit log is), so writers never queue on the chain's last row.

CREATE TABLE exchange_messages (
    id              BIGSERIAL PRIMARY KEY,
    xid             xid8   NOT NULL DEFAULT pg_current_xact_id(),
    direction       TEXT   NOT NULL CHECK (direction IN ('out', 'in')),
    partner         TEXT   NOT NULL,
    message_id      TEXT   NOT NULL,
    method          TEXT   NOT NULL,
    send_time_us    BIGINT NOT NULL,
    log_time_us     BIGINT NOT NULL,
    request_sha256  TEXT   NOT NULL,
    signature       TEXT   NOT NULL,
    request_body    BYTEA  NOT NULL,
    response_sha256 TEXT   NOT NULL,
    receipt         TEXT   NOT NULL,
    response_body   BYTEA  NOT NULL,
    result          TEXT   NOT NULL,
    item_count      BIGINT NOT NULL,
    sequence        BIGINT UNIQUE,
    prev_hash       TEXT,
    hash            TEXT
);
CREATE INDEX exchange_messages_unsealed ON exchange_messages (xid, id) WHERE sequence IS NULL;
CREATE INDEX exchange_messages_partner ON exchange_messages (partner, id);

CREATE TABLE exchange_message_chain (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_sequence BIGINT  NOT NULL,
    last_hash     TEXT    NOT NULL
);
INSERT INTO exchange_message_chain (singleton, last_sequence, last_hash) VALUES (1, 0, 'genesis');

-- Only sealing may change a row, once; nothing may delete one.
CREATE FUNCTION exchange_messages_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.sequence IS NOT NULL
       OR (NEW.id, NEW.xid, NEW.direction, NEW.partner, NEW.message_id, NEW.method, NEW.send_time_us,
           NEW.log_time_us, NEW.request_sha256, NEW.signature, NEW.request_body, NEW.response_sha256,
           NEW.receipt, NEW.response_body, NEW.result, NEW.item_count)
          IS DISTINCT FROM
          (OLD.id, OLD.xid, OLD.direction, OLD.partner, OLD.message_id, OLD.method, OLD.send_time_us,
           OLD.log_time_us, OLD.request_sha256, OLD.signature, OLD.request_body, OLD.response_sha256,
           OLD.receipt, OLD.response_body, OLD.result, OLD.item_count) THEN
        RAISE EXCEPTION 'the exchange message log is append-only';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER exchange_messages_guard BEFORE UPDATE OR DELETE ON exchange_messages
FOR EACH ROW EXECUTE FUNCTION exchange_messages_guard();

-- The message ids accepted from each partner: a second message with one is a replay.
CREATE TABLE exchange_seen_messages (
    partner     TEXT   NOT NULL,
    message_id  TEXT   NOT NULL,
    received_us BIGINT NOT NULL,
    PRIMARY KEY (partner, message_id)
);

-- Each partner's state as this side sees it.
CREATE TABLE exchange_partner_state (
    partner          TEXT PRIMARY KEY,
    last_contact_us  BIGINT,
    last_error       TEXT   NOT NULL DEFAULT '',
    postings_cursor  TEXT   NOT NULL DEFAULT ''
);

-- Employment confirmations waiting to go to a partner (state 'waiting'), or gone ('delivered'):
-- each once; the body (with the citizen ID) is encrypted.
CREATE TABLE exchange_outbox (
    id              TEXT   PRIMARY KEY,
    partner         TEXT   NOT NULL,
    confirmation_id TEXT   NOT NULL UNIQUE,
    body            BYTEA  NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('waiting', 'delivered')),
    outcome         TEXT   NOT NULL DEFAULT '',
    attempts        BIGINT NOT NULL DEFAULT 0,
    person_id       TEXT   NOT NULL,
    target_person   BIGINT NOT NULL,
    start_date      TEXT   NOT NULL,
    created_us      BIGINT NOT NULL,
    delivered_us    BIGINT
);
CREATE INDEX exchange_outbox_waiting ON exchange_outbox (partner, created_us) WHERE state = 'waiting';

-- Confirmations received from partners, once each: recorded in identity, or kept unmatched
-- for a clerk, or pending while identity does not answer.
CREATE TABLE exchange_received_confirmations (
    partner         TEXT   NOT NULL,
    confirmation_id TEXT   NOT NULL,
    body            BYTEA  NOT NULL,
    person_id       TEXT   NOT NULL,
    outcome         TEXT   NOT NULL CHECK (outcome IN ('recorded', 'unmatched', 'pending')),
    employer        TEXT   NOT NULL,
    work_region     TEXT   NOT NULL,
    start_date      TEXT   NOT NULL,
    received_us     BIGINT NOT NULL,
    recorded_us     BIGINT,
    PRIMARY KEY (partner, confirmation_id)
);
CREATE INDEX exchange_received_outcome ON exchange_received_confirmations (outcome, received_us);
