import { describe, expect, it } from "vitest";
import { DatabaseUnavailableError, isDatabaseUnavailable, whileDatabaseReturns } from "./database-unavailable";

const coded = (code: string, message = "failed") => Object.assign(new Error(message), { code });

describe("isDatabaseUnavailable", () => {
  it("recognises an unreachable database in the shapes Prisma, node-postgres and sockets report it", () => {
    expect(isDatabaseUnavailable(coded("P1001"))).toBe(true);
    expect(isDatabaseUnavailable(coded("ECONNREFUSED"))).toBe(true);
    expect(isDatabaseUnavailable(coded("57P01"))).toBe(true);
    expect(isDatabaseUnavailable(coded("08006"))).toBe(true);
    expect(isDatabaseUnavailable(new Error("Connection terminated unexpectedly"))).toBe(true);
    // node-postgres's pool, when no connection came free within its wait (a burst of reads).
    expect(isDatabaseUnavailable(new Error("timeout exceeded when trying to connect"))).toBe(true);
    expect(isDatabaseUnavailable(new Error("Client has encountered a connection error and is not queryable"))).toBe(
      true,
    );
    expect(
      isDatabaseUnavailable(
        coded("P2010", "Raw query failed. Code: `N/A`. Message: `Server has closed the connection.`"),
      ),
    ).toBe(true);
    expect(isDatabaseUnavailable(new Error("outer", { cause: coded("ECONNRESET") }))).toBe(true);
    expect(
      isDatabaseUnavailable(Object.assign(new Error("ConnectionClosed"), { cause: { kind: "ConnectionClosed" } })),
    ).toBe(true);
  });

  it("leaves errors of the query itself alone", () => {
    expect(isDatabaseUnavailable(coded("P2025", "Record to update not found."))).toBe(false);
    expect(isDatabaseUnavailable(coded("P2002", "Unique constraint failed"))).toBe(false);
    expect(isDatabaseUnavailable(new TypeError("x is undefined"))).toBe(false);
    expect(isDatabaseUnavailable(null)).toBe(false);
  });
});

describe("whileDatabaseReturns", () => {
  it("retries while the database is unreachable and returns once it answers", async () => {
    let calls = 0;
    const value = await whileDatabaseReturns(async () => {
      calls += 1;
      if (calls < 3) throw coded("P1001");
      return "answered";
    }, 5_000);
    expect(value).toBe("answered");
    expect(calls).toBe(3);
  });

  it("gives up with DatabaseUnavailableError after its wait, and passes other errors through at once", async () => {
    await expect(whileDatabaseReturns(() => Promise.reject(coded("P1001")), 50)).rejects.toBeInstanceOf(
      DatabaseUnavailableError,
    );
    let calls = 0;
    await expect(
      whileDatabaseReturns(() => {
        calls += 1;
        return Promise.reject(coded("P2002"));
      }, 5_000),
    ).rejects.toMatchObject({ code: "P2002" });
    expect(calls).toBe(1);
  });
});
