/** Reads one header (or gRPC metadata entry) by lower-case name. */
export type HeaderGetter = (name: string) => string | undefined;

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = "0".repeat(32);

/**
 * The trace id a request carries (W3C `traceparent`, B3 single `b3`, or B3 multi
 * `x-b3-traceid`; 64-bit B3 ids are left-padded to 128 bits as OpenTelemetry does), without
 * building any OpenTelemetry objects: the audit log correlates with traces even when riskgate's
 * own tracing is off or sampled the request out. Undefined when absent or malformed.
 */
export function traceIdOf(get: HeaderGetter): string | undefined {
  const traceparent = get("traceparent");
  if (traceparent !== undefined) {
    const id = traceparent.trim().toLowerCase().split("-")[1];
    if (id !== undefined && HEX32.test(id) && id !== ZERO32) return id;
  }
  const single = get("b3");
  if (single !== undefined) {
    const id = normalise(single.trim().split("-")[0]);
    if (id !== undefined) return id;
  }
  return normalise(get("x-b3-traceid")?.trim());
}

function normalise(id: string | undefined): string | undefined {
  if (id === undefined) return undefined;
  const lower = id.toLowerCase();
  const full = HEX16.test(lower) ? `${"0".repeat(16)}${lower}` : lower;
  return HEX32.test(full) && full !== ZERO32 ? full : undefined;
}
