/**
 * Reading what the servers and Redis count themselves: riskgate's Prometheus text and Redis's
 * INFO commandstats, as plain numbers the bench subtracts before from after.
 */
import type { Redis } from "ioredis";

export async function metricsText(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/**
 * The sum of a metric's samples whose labels contain `labels` (all samples when empty), or
 * undefined when the server does not export the metric at all (an older build).
 */
export function sumSamples(text: string, name: string, labels = ""): number | undefined {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, "gm"))) {
    if ((m[1] ?? "").includes(labels)) sum += Number(m[2]);
  }
  return text.includes(`# TYPE ${name} `) ? sum : undefined;
}

/** Samples of a counter summed by one label's value (riskgate_decisions_total by decision). */
export function byLabel(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, "gm"))) {
    const value = new RegExp(`${label}="([^"]*)"`).exec(m[1] ?? "")?.[1];
    if (value !== undefined) out[value] = (out[value] ?? 0) + Number(m[2]);
  }
  return out;
}

/** `after - before` for every key of `after`. */
export function delta(
  after: Record<string, number>,
  before: Record<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/**
 * Per command, the calls Redis has served so far and the microseconds it spent on them (INFO
 * commandstats; a script's time includes the commands it runs), e.g. calls { evalsha: 1200 }.
 */
export async function commandStats(
  redis: Redis,
): Promise<{ calls: Record<string, number>; usec: Record<string, number> }> {
  const info = await redis.info("commandstats");
  const calls: Record<string, number> = {};
  const usec: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    calls[m[1] as string] = Number(m[2]);
    usec[m[1] as string] = Number(m[3]);
  }
  return { calls, usec };
}

/**
 * Round trips riskgate made: script calls, and every other command but INFO (the bench's own
 * reads; riskgate never sends it on the deciding path). Everything else counts, pings included:
 * a round trip is a round trip whatever it is for.
 */
export function roundTrips(calls: Record<string, number>): { scripts: number; other: number } {
  let scripts = 0;
  let other = 0;
  for (const [cmd, n] of Object.entries(calls)) {
    if (cmd === "evalsha" || cmd === "eval") scripts += n;
    else if (cmd !== "info") other += n;
  }
  return { scripts, other };
}

/** What Redis's MONITOR saw while `during` ran: commands sent by clients, and run by scripts. */
export interface MonitorSample {
  /** Commands clients sent, by name (each one a round trip). */
  readonly sent: Record<string, number>;
  /** Commands scripts ran inside Redis (no round trip of their own). */
  readonly inScripts: number;
}

/**
 * Watches Redis's MONITOR stream while `during` runs. MONITOR tells a script's commands
 * ("lua") from those a client sent, which INFO commandstats does not; it slows Redis, so it is
 * only attached for a short sequential sample, never during the timed runs.
 */
export async function monitorWhile(
  redis: Redis,
  during: () => Promise<void>,
): Promise<MonitorSample> {
  const monitor = await redis.monitor();
  const sent: Record<string, number> = {};
  let inScripts = 0;
  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    if (source === "lua") inScripts++;
    else {
      const cmd = (args[0] ?? "").toLowerCase();
      if (cmd !== "info") sent[cmd] = (sent[cmd] ?? 0) + 1;
    }
  });
  try {
    await during();
    // the last commands' lines may still be on their way
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    monitor.disconnect();
  }
  return { sent, inScripts };
}
