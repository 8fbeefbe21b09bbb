import { mkdir, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { resolve } from "node:path";
import type { Measurement } from "./measure.ts";

const fmt = (value: number, digits: number) => value.toFixed(digits);

/** The machine line every benchmark prints under its title. */
export function machineLine(): string {
  return `node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? "unknown"})`;
}

/** Prints `rows` as a Markdown table: operation, p50, p99, mean (ms) and ops/s. */
export function printTable(rows: readonly Measurement[]): void {
  console.log("| operation | p50 ms | p99 ms | mean ms | ops/s |");
  console.log("|---|---:|---:|---:|---:|");
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${fmt(r.p50Ms, 3)} | ${fmt(r.p99Ms, 3)} | ${fmt(r.meanMs, 3)} | ${Math.round(r.throughputPerSec).toLocaleString("en-US")} |`,
    );
  }
}

/** A ratio to a same-run baseline. */
export interface Ratio {
  readonly p50: number;
  readonly p99: number;
  readonly throughput: number;
}

/** Prints one line per ratio: `name: p50 ×…, p99 ×…, throughput ×…`. */
export function printRatios(ratios: Readonly<Record<string, Ratio>>): void {
  for (const [name, r] of Object.entries(ratios)) {
    console.log(
      `${name}: p50 ×${fmt(r.p50, 2)}, p99 ×${fmt(r.p99, 2)}, throughput ×${fmt(r.throughput, 2)}`,
    );
  }
}

/** Writes `report` to bench/results/<name>.json and says where. */
export async function saveReport(name: string, report: unknown): Promise<void> {
  const dir = resolve(import.meta.dirname, "results");
  await mkdir(dir, { recursive: true });
  await writeFile(resolve(dir, `${name}.json`), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nJSON: bench/results/${name}.json`);
}
