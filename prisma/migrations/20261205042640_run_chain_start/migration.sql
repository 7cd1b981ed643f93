-- CreateIndex
CREATE INDEX "AgentRun_chainId_queuedAt_idx" ON "AgentRun"("chainId", "queuedAt");
