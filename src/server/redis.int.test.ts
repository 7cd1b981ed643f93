import { randomUUID } from "node:crypto";
import { once } from "node:events";
import type { Redis } from "ioredis";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { connectRedis, writeOncePerTurn } from "./redis";

describe("writeOncePerTurn", () => {
  const opened: Redis[] = [];
  const open = async (perTurn: boolean) => {
    const connection = connectRedis(inject("redisUrl"), "write-once-test");
    opened.push(connection);
    await connection.ping();
    return perTurn ? writeOncePerTurn(connection) : connection;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.quit()));
  });

  it("sends the commands of one turn in one write, and answers them all", async () => {
    const redis = await open(true);
    const plain = await open(false);
    const key = `write-once:${randomUUID()}`;
    const writev = vi.spyOn(redis.stream as unknown as { _writev: () => void }, "_writev");

    const replies = Promise.all([redis.set(key, "1"), redis.incr(key), redis.get(key)]);
    expect(redis.stream.writableCorked).toBe(1);
    const plainReply = plain.exists(key);
    expect(plain.stream.writableCorked).toBe(0);

    expect(await replies).toEqual(["OK", 2, "2"]);
    expect(redis.stream.writableCorked).toBe(0);
    expect(writev).toHaveBeenCalledTimes(1);
    await plainReply;
  });

  it("corks each turn anew, so a lone command of a later turn is answered at once", async () => {
    const redis = await open(true);
    const key = `write-once:${randomUUID()}`;
    await redis.set(key, "a");
    await new Promise((resolve) => setImmediate(resolve));
    expect(await redis.append(key, "b")).toBe(2);
    // Commands sent from promise continuations (a batch of answers) also share a write.
    const chained = await Promise.resolve().then(() => Promise.all([redis.append(key, "c"), redis.get(key)]));
    expect(chained).toEqual([3, "abc"]);
  });

  it("keeps working on the new socket after a reconnect", async () => {
    const redis = await open(true);
    const before = redis.stream;
    redis.disconnect(true);
    await once(redis, "ready");
    expect(redis.stream).not.toBe(before);
    const replies = Promise.all([redis.ping(), redis.echo("again")]);
    expect(redis.stream.writableCorked).toBe(1);
    expect(await replies).toEqual(["PONG", "again"]);
  });
});
