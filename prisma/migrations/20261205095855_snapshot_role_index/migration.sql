-- CreateIndex
CREATE INDEX "AgentRun_tenantId_agentRole_queuedAt_idx" ON "AgentRun"("tenantId", "agentRole", "queuedAt");
