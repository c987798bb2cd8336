-- Where each feed follower of this service has got to. The cursor is advanced in the same
-- transaction as the effect of the events it passes, and only from the value the follower
-- read (compare and set), so an effect is applied once even if two replicas ever follow at once.
CREATE TABLE follower_cursors (
    follower        TEXT   PRIMARY KEY,
    cursor          TEXT   NOT NULL,
    events_applied  INTEGER NOT NULL,
    updated_us      INTEGER NOT NULL
);
