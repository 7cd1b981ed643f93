-- AlterTable
ALTER TABLE "AgentRun" ADD COLUMN     "outputLength" DOUBLE PRECISION NOT NULL DEFAULT 0;

-- Runs written before the column counted nothing dropped: their whole output is kept.
UPDATE "AgentRun" SET "outputLength" = char_length("output");
