import { describe, expect, it } from "vitest";
import { MAX_PREPARED_STATEMENTS, StatementNames } from "./db";

describe("StatementNames", () => {
  it("gives each statement text one name for good, leaves DDL unnamed, and stops naming past its bound", () => {
    const names = new StatementNames();
    const select = 'SELECT "id" FROM "AgentRun" WHERE "id" = $1';
    const update = 'WITH running AS (SELECT 1) UPDATE "AgentRun" SET "seq" = "seq" + 1';
    expect(names.nameOf(select)).toBe(names.nameOf(select));
    expect(names.nameOf(update)).not.toBe(names.nameOf(select));
    expect(names.nameOf('CREATE TABLE "X" ("id" TEXT)')).toBe("");
    for (let i = 0; i < MAX_PREPARED_STATEMENTS; i++) names.nameOf(`SELECT ${i}`);
    expect(names.nameOf("SELECT 'one too many'")).toBe("");
    // Names already given stay.
    expect(names.nameOf(select)).toMatch(/^pulse_\d+$/);
  });
});
