-- A saga row is rewritten several times in its life: each step, and the no-op update that locks
-- it before a step (`storage::load_for_update`). An update that changes no indexed column stays
-- on its page (a HOT update, no new entry in the table's six indexes) only when the page has
-- room; freshly inserted rows fill pages completely, so without free space every lock wrote six
-- index entries. Room for a few versions per page keeps the locks HOT. Pages written before
-- this migration keep their layout until rewritten.
ALTER TABLE saga SET (fillfactor = 50);
