import { generateKeyPair, jwtVerify, SignJWT, type JWTPayload } from "jose";
import { describe, expect, it } from "vitest";
import { TokenSigner } from "./token-signer";

/**
 * Pulse verifies its tokens with node:crypto (`verifiedClaims`), not jose. Every token below
 * is also given to jose's `jwtVerify` with the options Pulse used before, as the reference:
 * the two agree on each, except where Pulse is deliberately stricter (named so).
 */

const SECRET = new TextEncoder().encode("a-test-secret-that-is-at-least-32-characters");
const signer = new TokenSigner(SECRET);
const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

interface Shape {
  header?: Record<string, unknown>;
  claims?: JWTPayload;
  key?: Parameters<SignJWT["sign"]>[0];
}

/** A token jose signs; `claims` replace the defaults Pulse's session tokens carry (undefined removes one). */
async function signed({ header = { alg: "HS256", typ: "JWT" }, claims = {}, key = SECRET }: Shape = {}) {
  const issued = now();
  const payload = {
    tid: "tenant-1",
    sid: "session-1",
    sub: "user-1",
    iss: "pulse",
    aud: "pulse:session",
    iat: issued,
    exp: issued + 600,
    ...claims,
  };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete (payload as JWTPayload)[name];
  return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(key);
}

/** A token of HS256's shape whose parts are given as they are, signed over them with Pulse's secret. */
async function hmacOver(header: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", SECRET, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const signature = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${header}.${body}`));
  return `${header}.${body}.${Buffer.from(signature).toString("base64url")}`;
}

/** Whether jose accepts the token as a session token, with the options Pulse gave it. */
async function joseAccepts(token: string): Promise<boolean> {
  try {
    const { payload } = await jwtVerify(token, SECRET, {
      algorithms: ["HS256"],
      issuer: "pulse",
      audience: ["pulse:session"],
      typ: "JWT",
      requiredClaims: ["exp", "iat", "sub", "aud"],
    });
    return typeof payload.sub === "string" && (!Array.isArray(payload.aud) || payload.aud.length === 1);
  } catch {
    return false;
  }
}

const pulseAccepts = async (token: string) => (await signer.verify(token, ["session"])) !== null;

describe("a token", () => {
  it("Pulse signed verifies as its own kind only, with its subject, claims and expiry", async () => {
    const { token, expiresAt } = await signer.sign("socket", "session-9", { tid: "tenant-9" }, 300);
    const verified = await signer.verify(token, ["socket"]);
    expect(verified).toMatchObject({ kind: "socket", subject: "session-9", claims: { tid: "tenant-9", iss: "pulse" } });
    expect(verified?.expiresAt).toBe(expiresAt.getTime());
    expect(await signer.verify(token, ["session", "share", "report"])).toBeNull();
    expect(await signer.verify(token, ["share", "socket"])).toMatchObject({ kind: "socket" });
    expect(await signer.verify(token, [])).toBeNull();
  });

  it("is refused past its expiry to the second, and before its nbf", async () => {
    expect(await pulseAccepts(await signed({ claims: { exp: now() } }))).toBe(false);
    expect(await pulseAccepts(await signed({ claims: { exp: now() + 2 } }))).toBe(true);
    expect(await pulseAccepts(await signed({ claims: { nbf: now() + 60 } }))).toBe(false);
    expect(await pulseAccepts(await signed({ claims: { nbf: now() - 60 } }))).toBe(true);
  });

  it("is judged as jose judges it: forged, re-signed, misdirected, tampered and malformed tokens are refused", async () => {
    const genuine = await signed();
    const [head, body, signature] = genuine.split(".") as [string, string, string];
    const rsa = await generateKeyPair("RS256");
    const cases: Record<string, string> = {
      genuine,
      "audience as a one-element list": await signed({ claims: { aud: ["pulse:session"] } }),
      "nbf in the past": await signed({ claims: { nbf: now() - 5 } }),
      "alg none (unsigned)": `${b64({ alg: "none", typ: "JWT" })}.${body}.`,
      "HS512 with the right secret": await signed({ header: { alg: "HS512", typ: "JWT" } }),
      "HS384 with the right secret": await signed({ header: { alg: "HS384", typ: "JWT" } }),
      "RS256 with an attacker's key": await signed({ header: { alg: "RS256", typ: "JWT" }, key: rsa.privateKey }),
      "HS256 with another secret": await signed({ key: new TextEncoder().encode("x".repeat(48)) }),
      "header claims HS256, body re-encoded (signature of the original)": `${head}.${b64({ ...JSON.parse(Buffer.from(body, "base64url").toString()), tid: "tenant-2" })}.${signature}`,
      "signature stripped": `${head}.${body}.`,
      "signature of another length": `${head}.${body}.${signature}AA`,
      "no typ header": await signed({ header: { alg: "HS256" } }),
      "another issuer": await signed({ claims: { iss: "evil" } }),
      "no issuer": await signed({ claims: { iss: undefined } }),
      "another audience": await signed({ claims: { aud: "pulse:admin" } }),
      "two audiences": await signed({ claims: { aud: ["pulse:session", "pulse:share"] } }),
      "no subject": await signed({ claims: { sub: undefined } }),
      "no issued-at": await signed({ claims: { iat: undefined } }),
      "no expiry": await signed({ claims: { exp: undefined } }),
      "expiry as text": await hmacOver(
        head,
        b64({ sub: "u", iss: "pulse", aud: "pulse:session", iat: now(), exp: "9999999999" }),
      ),
      expired: await signed({ claims: { iat: now() - 7200, exp: now() - 3600 } }),
      "not yet valid": await signed({ claims: { nbf: now() + 3600 } }),
      "a body that is a list, correctly signed": await hmacOver(head, b64(["pulse"])),
      "a body that is not JSON, correctly signed": await hmacOver(head, Buffer.from("{nope").toString("base64url")),
      "four parts": `${genuine}.${signature}`,
      garbage: "not.a.token",
      empty: "",
    };
    for (const [name, token] of Object.entries(cases)) {
      expect({ name, pulse: await pulseAccepts(token) }).toEqual({ name, pulse: await joseAccepts(token) });
    }
    expect(await pulseAccepts(genuine)).toBe(true);
  });

  it("is refused where Pulse is stricter than jose: another header field, another spelling of typ or of the signature", async () => {
    const genuine = await signed();
    const [head, body, signature] = genuine.split(".") as [string, string, string];
    // The last of 43 characters carries two unused bits: four spellings decode to the same signature.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(signature.at(-1)!);
    const respelled = `${head}.${body}.${signature.slice(0, -1)}${alphabet[last ^ 1]}`;
    const stricter: Record<string, string> = {
      "a key id in the header": await signed({ header: { alg: "HS256", typ: "JWT", kid: "k1" } }),
      "typ spelt application/jwt": await signed({ header: { alg: "HS256", typ: "application/jwt" } }),
      "typ in lower case": await signed({ header: { alg: "HS256", typ: "jwt" } }),
      "the signature spelt with other unused bits": respelled,
    };
    for (const [name, token] of Object.entries(stricter)) {
      expect({ name, jose: await joseAccepts(token), pulse: await pulseAccepts(token) }).toEqual({
        name,
        jose: true,
        pulse: false,
      });
    }
  });
});
