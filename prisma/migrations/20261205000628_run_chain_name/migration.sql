-- AlterTable
ALTER TABLE "AgentRun" ADD COLUMN     "chainName" TEXT;
