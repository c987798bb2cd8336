-- Masked citizen IDs keep the first 4 characters and the check character (3704*************X),
-- no longer the last 4: with the county, sex and birth year and month a masked view shows, the
-- sequence digits left a handful of candidate IDs. The stored masked forms are redone from the
-- old ones (first 4 and last 1 are in both).
UPDATE persons SET citizen_id_masked = substr(citizen_id_masked, 1, 4) || '*************' || substr(citizen_id_masked, 18, 1)
WHERE length(citizen_id_masked) = 18;
UPDATE citizen_id_corrections SET new_citizen_id_masked = substr(new_citizen_id_masked, 1, 4) || '*************' || substr(new_citizen_id_masked, 18, 1)
WHERE length(new_citizen_id_masked) = 18;
UPDATE person_citizen_id_history SET citizen_id_masked = substr(citizen_id_masked, 1, 4) || '*************' || substr(citizen_id_masked, 18, 1)
WHERE length(citizen_id_masked) = 18;
