/** Latency and throughput of one benchmarked operation. */
export interface Measurement {
  readonly name: string;
  readonly samples: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  /** Completed operations per second with `concurrency` in flight. */
  readonly throughputPerSec: number;
  readonly concurrency: number;
}

function percentile(sorted: readonly number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

/**
 * Measures `operation`: `warmup` unmeasured runs, then `samples` sequential runs for the
 * latency percentiles, then `throughputMs` of runs with `concurrency` in flight.
 */
export async function measure(
  name: string,
  operation: () => Promise<unknown>,
  options: { warmup: number; samples: number; concurrency: number; throughputMs: number },
): Promise<Measurement> {
  for (let i = 0; i < options.warmup; i += 1) await operation();
  const latencies: number[] = [];
  for (let i = 0; i < options.samples; i += 1) {
    const started = process.hrtime.bigint();
    await operation();
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  latencies.sort((a, b) => a - b);
  const throughputPerSec = await throughputWindow(
    operation,
    options.concurrency,
    options.throughputMs,
  );
  return {
    name,
    samples: latencies.length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    meanMs: latencies.reduce((sum, value) => sum + value, 0) / latencies.length,
    throughputPerSec,
    concurrency: options.concurrency,
  };
}

/** Completed runs per second of `operation` with `concurrency` in flight for `ms`. */
async function throughputWindow(
  operation: () => Promise<unknown>,
  concurrency: number,
  ms: number,
): Promise<number> {
  let completed = 0;
  const deadline = performance.now() + ms;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await operation();
        completed += 1;
      }
    }),
  );
  return completed / Math.max((performance.now() - started) / 1000, Number.EPSILON);
}

/** Options of {@link measureInterleaved}. */
export interface InterleavedOptions {
  readonly warmup: number;
  readonly samples: number;
  readonly concurrency: number;
  /** Length of one throughput window. */
  readonly throughputMs: number;
  /** Throughput windows per operation, taken in turn across all operations. */
  readonly rounds: number;
}

/**
 * Measures several operations so that their ratios survive a noisy machine: latency as
 * {@link measure} does (one operation after another), then `rounds` throughput windows taken
 * in turn (A, B, C, A, B, C, ...), so that a slow spell hits every operation alike. Each
 * result's `throughputPerSec` is its median window; `roundThroughputs` keeps every window, in
 * round order, so a ratio can be taken per round and its median reported.
 */
export async function measureInterleaved(
  operations: readonly { readonly name: string; readonly run: () => Promise<unknown> }[],
  options: InterleavedOptions,
): Promise<(Measurement & { readonly roundThroughputs: readonly number[] })[]> {
  const latencyOnly = { ...options, throughputMs: 0, concurrency: 1 };
  const results = [];
  for (const operation of operations)
    results.push(await measure(operation.name, operation.run, latencyOnly));
  const windows = operations.map(() => [] as number[]);
  for (let round = 0; round < options.rounds; round += 1) {
    for (const [index, operation] of operations.entries()) {
      windows[index]!.push(
        await throughputWindow(operation.run, options.concurrency, options.throughputMs),
      );
    }
  }
  return results.map((result, index) => ({
    ...result,
    throughputPerSec: median(windows[index]!),
    concurrency: options.concurrency,
    roundThroughputs: windows[index]!,
  }));
}

/** The median of `values` (the lower middle one for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}
