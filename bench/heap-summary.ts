import { readFile } from "node:fs/promises";

/**
 * What a server's heap holds per connection: the difference between two V8 heap snapshots
 * (`npm run bench -- --heap` writes one before and one after the idle subscribers connect),
 * grouped by constructor (objects), function (closures) or kind, divided by the number of
 * connections.
 *
 * Usage: tsx bench/heap-summary.ts <before.heapsnapshot> <after.heapsnapshot> <connections> [top=30]
 */

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

async function groups(file: string): Promise<Map<string, { count: number; bytes: number }>> {
  const heap = JSON.parse(await readFile(file, "utf8")) as HeapSnapshot;
  const fields = heap.snapshot.meta.node_fields;
  const types = heap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < heap.nodes.length; i += width) {
    const type = types[heap.nodes[i + typeAt]!] ?? "?";
    const name = heap.strings[heap.nodes[i + nameAt]!] ?? "?";
    const key = type === "object" || type === "closure" || type === "native" ? `${type} ${name}` : `(${type})`;
    const entry = out.get(key) ?? { count: 0, bytes: 0 };
    entry.count += 1;
    entry.bytes += heap.nodes[i + sizeAt]!;
    out.set(key, entry);
  }
  return out;
}

async function main(): Promise<void> {
  const [beforeFile, afterFile, connectionsArg, topArg] = process.argv.slice(2);
  if (!beforeFile || !afterFile || !connectionsArg)
    throw new Error("usage: tsx bench/heap-summary.ts <before> <after> <connections> [top]");
  const connections = Number(connectionsArg);
  const top = Number(topArg ?? 30);
  const [before, after] = [await groups(beforeFile), await groups(afterFile)];
  const rows = [...after.entries()].map(([key, now]) => {
    const was = before.get(key) ?? { count: 0, bytes: 0 };
    return { key, count: (now.count - was.count) / connections, bytes: (now.bytes - was.bytes) / connections };
  });
  const total = rows.reduce((sum, r) => sum + r.bytes, 0);
  console.log(
    `heap growth per connection: ${Math.round(total)} B (self sizes of ${connections} connections' objects)\n`,
  );
  console.log("   bytes  objects  what");
  for (const row of rows.sort((a, b) => b.bytes - a.bytes).slice(0, top)) {
    console.log(`${Math.round(row.bytes).toString().padStart(8)} ${row.count.toFixed(1).padStart(8)}  ${row.key}`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
