-- A running agent's row is rewritten for each of its steps, log lines and output chunks, and by
-- every progress flush. Room left on each page keeps those rewrites on the row's own page (HOT
-- updates: no new entry in any of the table's five indexes, old versions reclaimed in place).
-- With full pages a fifth of the rewrites moved to another page, and a flush of 200 runs'
-- progress, which holds their rows until it commits, took twice as long (12 ms against 5.5).
-- Inserts stop at 70% of a page from now on, and pages already full get the room as vacuum
-- frees them.
ALTER TABLE "AgentRun" SET (fillfactor = 70);
