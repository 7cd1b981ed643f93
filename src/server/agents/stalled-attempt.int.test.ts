import { randomUUID } from "node:crypto";
import { Worker, type Queue } from "bullmq";
import { afterEach, describe, expect, inject, it } from "vitest";
import { connectRedis } from "../redis";
import { AgentQueues, queuePrefix, type AgentJobData } from "./queue";
import { stalledAttempt } from "./lost-attempts";

const role = "stall-attempt";
const closing: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const resource of closing.splice(0).reverse()) await resource.close();
});

/** A queue holding one job that ran once (attempt 1) and is back in waiting, as after a stall, and a worker to take it by hand. */
async function jobBackInWaiting() {
  const prefix = `test-${randomUUID().slice(0, 8)}`;
  const queues = new AgentQueues({
    connection: connectRedis(inject("redisUrl"), `${prefix}:queues`),
    prefix,
    attempts: 3,
  });
  closing.push(queues);
  const taker = new Worker<AgentJobData>(role, null, {
    connection: connectRedis(inject("redisUrl"), `${prefix}:taker`, { redis: { maxRetriesPerRequest: null } }),
    prefix: queuePrefix(prefix, role),
  });
  closing.push(taker);
  const runId = randomUUID();
  await queues.enqueue(role, { tenantId: "t", runId, chain: [], input: {} });
  const token = randomUUID();
  const first = await taker.getNextJob(token);
  expect(first?.attemptsStarted).toBe(1);
  await first!.moveToWait(token);
  return { queues, taker, runId };
}

describe("the attempt a stalled job was running", () => {
  it("is the job's count while it waits", async () => {
    const { queues, runId } = await jobBackInWaiting();
    expect(await stalledAttempt(queues, role, runId)).toBe(1);
  });

  // Regression: read before a free worker took the job again and its state after, the count
  // was the stalled attempt's own, "one less" made it attempt 0, and the report of the
  // stall failed validation (a ZodError logged after every crash restart).
  it("is the one before the next attempt when a worker takes the job again between the reads", async () => {
    const { queues, taker, runId } = await jobBackInWaiting();
    let takenAgain = false;
    const racing = {
      get: (name: string) => {
        const queue = queues.get(name);
        return {
          async getJob(id: string) {
            const job = await queue.getJob(id);
            if (!takenAgain) {
              takenAgain = true;
              expect((await taker.getNextJob(randomUUID()))?.attemptsStarted).toBe(2);
            }
            return job;
          },
        } as unknown as Queue<AgentJobData>;
      },
    };
    expect(await stalledAttempt(racing, role, runId)).toBe(1);
    expect(takenAgain).toBe(true);
  });
});
