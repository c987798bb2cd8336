-- Shared postings. Ours: postings job matching's feed names are noted by the follower, then
-- taken by one job into the shared feed a partner reads by cursor (one writer, so the ids a
-- partner sees are in commit order). The partner's: received by cursor, then created, changed
-- or closed in our job matching (synced = 1 once done).
CREATE TABLE exchange_noted_postings (
    posting_id TEXT   PRIMARY KEY,
    noted_us   BIGINT NOT NULL
);

CREATE TABLE exchange_shared_feed (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    posting_id TEXT   NOT NULL,
    withdrawn  BIGINT NOT NULL,
    body       BLOB  NOT NULL,
    created_us BIGINT NOT NULL
);

CREATE TABLE exchange_partner_postings (
    partner       TEXT   NOT NULL,
    posting_id    TEXT   NOT NULL,
    body          BLOB  NOT NULL,
    withdrawn     BIGINT NOT NULL,
    synced        BIGINT NOT NULL,
    local_posting TEXT   NOT NULL DEFAULT '',
    last_error    TEXT   NOT NULL DEFAULT '',
    received_us   BIGINT NOT NULL,
    PRIMARY KEY (partner, posting_id)
);
CREATE INDEX exchange_partner_postings_unsynced ON exchange_partner_postings (synced, received_us);
