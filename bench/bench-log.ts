/** The bench's progress lines and its one sleep, shared by the orchestrator's modules. */
const benchStarted = performance.now();
/** A line on stdout, prefixed with the seconds since the bench started. */
export const log = (line: string) => {
  const seconds = ((performance.now() - benchStarted) / 1000).toFixed(1).padStart(6);
  process.stdout.write(line.startsWith("\n") ? `\n[${seconds}s] ${line.slice(1)}\n` : `[${seconds}s] ${line}\n`);
};
// A closed pipe (`npm run bench | head`) must not stop the bench before it cleans up.
process.stdout.on("error", () => {});
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
