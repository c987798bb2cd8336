-- Statistics place each person in the region they were in on the period's reference day, from
-- this history: the persons ever under a prefix are one range of this index (with the day and
-- the person in it, so the range alone answers), where the persons table only knows today.
CREATE INDEX person_regions_region ON person_regions (region, valid_from, person_id);
