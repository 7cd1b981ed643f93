-- A run's output moves from one column, which every chunk rewrote whole, to a row per chunk
-- (RunOutputChunk)

-- CreateTable
CREATE TABLE "RunOutputChunk" (
    "runId" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "start" DOUBLE PRECISION NOT NULL,
    "text" TEXT NOT NULL,

    CONSTRAINT "RunOutputChunk_pkey" PRIMARY KEY ("runId","attempt","start")
);

-- AddForeignKey
ALTER TABLE "RunOutputChunk" ADD CONSTRAINT "RunOutputChunk_runId_fkey" FOREIGN KEY ("runId") REFERENCES "AgentRun"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Moves the output kept so far, in chunks no longer than an output event's longest (16384
-- characters), as readers of a window look no further back than that for its first chunk
INSERT INTO "RunOutputChunk" ("runId", "attempt", "start", "text")
SELECT r."id", r."attempt", r."outputLength" - char_length(r."output") + s."at", substring(r."output" FROM s."at" + 1 FOR 16384)
FROM "AgentRun" AS r, generate_series(0, char_length(r."output") - 1, 16384) AS s("at")
WHERE r."output" <> '';

-- AlterTable
ALTER TABLE "AgentRun" DROP COLUMN "output";
