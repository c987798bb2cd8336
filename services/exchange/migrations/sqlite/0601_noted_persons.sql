-- Persons whose employment identity says changed, noted by the follower of identity's feed in
-- the transaction that moves its cursor; the outbox job reads each one's employment and queues
-- a confirmation for the partner where the person is registered, then drops the note.
CREATE TABLE exchange_noted_persons (
    person_id TEXT   PRIMARY KEY,
    noted_us  BIGINT NOT NULL
);
