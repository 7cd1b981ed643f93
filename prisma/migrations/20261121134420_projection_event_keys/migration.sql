-- AlterTable
ALTER TABLE "AgentRun" ADD COLUMN     "lastEventKey" TEXT;

-- AlterTable
ALTER TABLE "ContextFile" ADD COLUMN     "lastEventKey" TEXT;
