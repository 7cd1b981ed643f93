/** What fixes a run's output window: its attempt, when that attempt (re)started its output, and how long the output was. */
export interface OutputVersion {
  /** The run's id. */
  id: string;
  attempt: number;
  startedAt: Date | null;
  outputLength: number;
}

/**
 * The newest output windows recently read, so a snapshot of a run whose output has not
 * grown since costs no read of the output: reading a window joins the chunks it overlaps
 * (up to OUTPUT_WINDOW_CHARS of text) inside the database, and on the embedded PGlite that
 * work holds this process's event loop, and every other tenant with it. An attempt's output
 * only grows until the attempt starts again (`startedAt` changes), so its length tells
 * whether a window is still the newest. Holds at most `capacity` windows.
 */
export class OutputWindows<Page> {
  private readonly windows = new Map<string, { key: string; page: Page }>();

  constructor(private readonly capacity = 64) {}

  /** The window read for exactly this version of the run's output, if it is still held. */
  get(version: OutputVersion): Page | undefined {
    const held = this.windows.get(version.id);
    return held?.key === versionKey(version) ? held.page : undefined;
  }

  remember(version: OutputVersion, page: Page): void {
    this.windows.delete(version.id);
    if (this.windows.size >= this.capacity) this.windows.delete(this.windows.keys().next().value!);
    this.windows.set(version.id, { key: versionKey(version), page });
  }
}

const versionKey = (v: OutputVersion) => `${v.attempt}:${v.startedAt?.getTime() ?? ""}:${v.outputLength}`;
