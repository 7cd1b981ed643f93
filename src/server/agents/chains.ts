/**
 * The setup chain a new tenant runs: research the client, then its competitors, then write
 * the context file from both. Each agent announces the next as `nextAgent` when it completes.
 */
export const SETUP_CHAIN = ["client-researcher", "competitor-researcher", "context-file-writer"] as const;
