import { readFileSync } from "node:fs";

/** Shorter passwords fall to an offline guess of the hash too quickly. */
export const MIN_PASSWORD_LENGTH = 10;

let common: Set<string> | undefined;

/** The shipped list of the most common passwords, read once, on the first registration. */
function commonPasswords(): Set<string> {
  common ??= new Set(
    readFileSync(new URL("./common-passwords.txt", import.meta.url), "utf8")
      .split("\n")
      .filter((line) => line !== "" && !line.startsWith("#")),
  );
  return common;
}

/**
 * What is wrong with a new account's password, in words for the person choosing it, or
 * null when it may be used: at least ten characters, not one character repeated, and not
 * one of the passwords attackers try first (compared lower-cased).
 */
export function passwordProblem(password: string): string | null {
  if (password.length < MIN_PASSWORD_LENGTH) return `must be at least ${MIN_PASSWORD_LENGTH} characters`;
  if (new Set(password).size === 1) return "must not be one character repeated";
  if (commonPasswords().has(password.trim().toLowerCase()))
    return "is one of the most common passwords; choose one that is harder to guess";
  return null;
}
