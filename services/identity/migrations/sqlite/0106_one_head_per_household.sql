-- One head (户主) per household. The handlers check it first for a clear answer; this index
-- holds the rule when two writes race (two clerks each registering a head at once).
CREATE UNIQUE INDEX persons_one_head ON persons (household_id) WHERE household_relation = 'head';
