-- DropIndex
DROP INDEX "AgentRun_tenantId_queuedAt_idx";

-- CreateIndex
CREATE INDEX "AgentRun_tenantId_queuedAt_id_idx" ON "AgentRun"("tenantId", "queuedAt", "id");
