import { describe, expect, it } from "vitest";
import { DEMO_USER } from "../bootstrap";
import { MIN_PASSWORD_LENGTH, passwordProblem } from "./password-policy";

describe("a new account's password", () => {
  it.each([
    ["12345678", /at least 10 characters/],
    ["password", /at least 10 characters/],
    [" ".repeat(8), /at least 10 characters/],
    [" ".repeat(MIN_PASSWORD_LENGTH), /one character repeated/],
    ["zzzzzzzzzzzz", /one character repeated/],
    ["1234567890", /most common passwords/],
    ["Password123", /most common passwords/],
    ["QWERTYUIOP", /most common passwords/],
    [" iloveyou123 ", /most common passwords/],
  ])("%j is refused: %s", (password, reason) => {
    expect(passwordProblem(password)).toMatch(reason);
  });

  it.each([DEMO_USER.password, "correct horse battery", "Tr0ub4dor&3x"])("%j is accepted", (password) => {
    expect(passwordProblem(password)).toBeNull();
  });
});
