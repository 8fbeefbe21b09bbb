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
  let completed = 0;
  const deadline = performance.now() + options.throughputMs;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (performance.now() < deadline) {
        await operation();
        completed += 1;
      }
    }),
  );
  const elapsedSec = (performance.now() - started) / 1000;
  return {
    name,
    samples: latencies.length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    meanMs: latencies.reduce((sum, value) => sum + value, 0) / latencies.length,
    throughputPerSec: completed / elapsedSec,
    concurrency: options.concurrency,
  };
}
