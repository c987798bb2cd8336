-- Ties a database holding personal data to the data keys it was written with, so a server given
-- other keys (a backup restored beside another deployment's keys folder) refuses to start
-- instead of answering "not found" for persons who are there. One row: a base64 AES-GCM
-- envelope of a fixed label under the encryption key, the hex HMAC-SHA256 of that label under
-- the blind-index key, and the keys' ids. Never key material.
CREATE TABLE data_key_check (
    singleton         BIGINT  NOT NULL PRIMARY KEY CHECK (singleton = 1),
    encryption_key_id TEXT    NOT NULL,
    encryption_check  TEXT    NOT NULL,
    index_key_version BIGINT  NOT NULL,
    index_check       TEXT    NOT NULL,
    recorded_time_us  BIGINT  NOT NULL
);
