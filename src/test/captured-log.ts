import { Writable } from "node:stream";

/** Every line a logger wrote, as text and parsed: pass it as `createLogger`'s destination. */
export class CapturedLog extends Writable {
  text = "";

  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString("utf8");
    done();
  }

  get lines(): Record<string, any>[] {
    return this.text
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, any>);
  }

  /** The longest line in characters. */
  get longestLine(): number {
    return Math.max(0, ...this.text.split("\n").map((line) => line.length));
  }

  /** Lines at pino's "error" level (50) or above. */
  errors(): Record<string, any>[] {
    return this.lines.filter((line) => line.level >= 50);
  }
}
