import type { IdentityOutcome } from "../access/identity.js";
import type { Caller, LicenseOutcome } from "../access/license.js";
import type { Decision, DecisionTrace } from "../access/pipeline.js";
import type { Policy } from "../access/policy.js";
import type { AccessRequest } from "../access/request.js";
import type { ResolvedRoute } from "../access/routes.js";
import type { SignalContext, SignalFinding } from "../access/signals/signal.js";
import type { OpResult, StoreOp } from "../state/store.js";

/** What the stages of one decision reported, in order. */
export interface Explanation {
  route?: ResolvedRoute;
  identity?: { outcome: IdentityOutcome; caller: Caller | undefined };
  license?: LicenseOutcome;
  context?: SignalContext;
  readonly signals: {
    name: string;
    ops: readonly StoreOp[];
    readings: readonly OpResult<StoreOp>[] | undefined;
    finding: SignalFinding | undefined;
  }[];
}

/** A trace that records every stage into an {@link Explanation}. */
export function createExplainTrace(): { trace: DecisionTrace; explanation: Explanation } {
  const explanation: Explanation = { signals: [] };
  const trace: DecisionTrace = {
    route: (route) => {
      explanation.route = route;
    },
    identity: (outcome, caller) => {
      explanation.identity = { outcome, caller };
    },
    license: (outcome) => {
      explanation.license = outcome;
    },
    context: (ctx) => {
      explanation.context = ctx;
    },
    signal: (name, ops, readings, finding) => {
      explanation.signals.push({ name, ops, readings, finding });
    },
  };
  return { trace, explanation };
}

/**
 * The decision stage by stage, in one screen: the request, the route matched, the identity
 * outcome, the license, every signal that ran with its inputs, its state readings and points,
 * the score, the thresholds that applied, the rule that fired (if any) and the verdict.
 */
export function renderExplanation(
  e: Explanation,
  req: AccessRequest,
  decision: Decision,
  policy: Policy,
): string {
  const out: string[] = [
    row(
      "request",
      `${req.id} ${req.method} ${req.host}${req.path} from ${req.clientIp || "(unknown)"} at ${iso(req.receivedAt)}`,
    ),
    routeRow(e.route, policy),
    identityRow(e),
    licenseRow(e),
  ];
  const ctx = e.context;
  if (ctx !== undefined) {
    const loc = ctx.location();
    out.push(
      row(
        "context",
        `device ${ctx.deviceId || "(none)"}; location ${loc === undefined ? "(unknown)" : JSON.stringify(loc)}`,
      ),
    );
  }
  out.push(...signalRows(e.signals));
  const { verdict } = decision;
  const parts = verdict.reasons.filter((r) => r.points !== 0).map((r) => `${r.code} ${r.points}`);
  out.push(
    row(
      "score",
      `${verdict.score}${parts.length > 0 ? ` = ${parts.join(" + ")}` : ""} (clamped to 0..100)`,
    ),
    thresholdsRow(e),
  );
  if (policy.doc.rules.length > 0) out.push(rulesRow(e, decision, policy.doc.rules.length));
  out.push(verdictRow(decision));
  return `${out.join("\n")}\n`;
}

function row(label: string, text: string): string {
  return `${label.padEnd(10)} ${text}`;
}

function routeRow(route: ResolvedRoute | undefined, policy: Policy): string {
  if (route === undefined) return row("route", "(not reached)");
  if (route.rule === undefined) {
    return row(
      "route",
      `${route.name} (no rule matched: default_route, ${policy.doc.default_route.action})`,
    );
  }
  const r = route.rule;
  return row(
    "route",
    `${route.name}: ${describeMatch(r.match)}; auth ${r.auth}, sensitivity ${r.sensitivity}${r.entitlement === undefined ? "" : `, needs ${r.entitlement}`}${r.mode === undefined ? "" : `, mode ${r.mode}`}`,
  );
}

function identityRow(e: Explanation): string {
  if (e.identity === undefined) {
    return row("identity", e.route?.auth === "none" ? "not checked (auth: none)" : "(not reached)");
  }
  const { outcome, caller } = e.identity;
  if (outcome.kind === "invalid")
    return row("identity", `refused: ${outcome.reason} (${outcome.detail})`);
  if (outcome.kind === "anonymous") {
    return row(
      "identity",
      caller === undefined ? "no credential" : `anonymous, tier ${caller.tier}`,
    );
  }
  return row(
    "identity",
    `verified from ${outcome.source}${outcome.cached ? " (cached)" : ""}: ${describeCaller(caller)}`,
  );
}

function licenseRow(e: Explanation): string {
  if (e.license === undefined) return row("license", "(not reached)");
  if (!e.license.ok) {
    return row("license", `refused: ${e.license.reason.code}${detail(e.license.reason.detail)}`);
  }
  const entitlement = e.route?.rule?.entitlement;
  return row(
    "license",
    `ok: tier ${e.license.tierName}${entitlement === undefined ? "" : ` grants ${entitlement}`}`,
  );
}

/** Every signal that ran: its points and reasons, then each store op with its reading. */
function signalRows(signals: Explanation["signals"]): string[] {
  if (signals.length === 0) return [];
  const out = ["signals"];
  for (const s of signals) {
    const points = s.finding?.reasons.reduce((a, r) => a + r.points, 0) ?? 0;
    out.push(`  ${s.name.padEnd(24)} ${String(points).padStart(3)}  ${describeFinding(s.finding)}`);
    s.ops.forEach((op, i) => {
      out.push(`  ${"".padEnd(24)}      ${describeOp(op)} -> ${describeReading(s.readings?.[i])}`);
    });
  }
  return out;
}

function describeFinding(finding: SignalFinding | undefined): string {
  if (finding === undefined) return "skipped: store unavailable";
  if (finding.reasons.length === 0 && !finding.throttle && !finding.block) return "-";
  return [
    ...finding.reasons.map((r) => `${r.code} +${r.points}${detail(r.detail)}`),
    ...(finding.throttle
      ? [`throttle ${finding.throttle.retryAfterSeconds}s (${finding.throttle.reason.code})`]
      : []),
    ...(finding.block ? [`block (${finding.block.code})`] : []),
  ].join(", ");
}

function thresholdsRow(e: Explanation): string {
  const route = e.route;
  if (e.license?.ok !== true || route === undefined) {
    return row("thresholds", "none applied (decided before scoring)");
  }
  const tier = e.license.tier;
  const bySensitivity = tier.risk.by_sensitivity[route.sensitivity];
  const limits = bySensitivity ?? tier.risk;
  return row(
    "thresholds",
    `tier ${e.license.tierName}, sensitivity ${route.sensitivity}${bySensitivity === undefined ? "" : " (override)"}: challenge_at ${limits.challenge_at}, deny_at ${limits.deny_at}${tier.downgrade_to === undefined ? "" : `, downgrade_to ${tier.downgrade_to}`}`,
  );
}

function rulesRow(e: Explanation, decision: Decision, ruleCount: number): string {
  const matched = decision.enforced.reasons.filter((r) => r.code.startsWith("rule."));
  const fired = matched.find((r) => !r.detail?.startsWith("shadow:"));
  const shadows = matched.filter((r) => r !== fired).map((r) => `${r.code} (${r.detail})`);
  // a signal's hard block (a denied country, a block list with `action: deny`) refuses
  // before the rules table runs, like a license denial
  const block = e.signals.find((s) => s.finding?.block !== undefined)?.finding?.block;
  const head =
    fired !== undefined
      ? `${fired.code} fired: ${fired.detail ?? ""}`
      : block !== undefined
        ? `not reached (hard block ${block.code} decided first)`
        : e.license?.ok === true
          ? `none of ${ruleCount} matched`
          : "not reached (decided before the rules)";
  return row("rules", `${head}${shadows.length > 0 ? `; shadow: ${shadows.join(", ")}` : ""}`);
}

function verdictRow(decision: Decision): string {
  const { verdict, enforced } = decision;
  let outcome: string = enforced.kind;
  if (enforced.kind === "challenge") {
    outcome += ` (${enforced.style}, acr_values ${enforced.acrValues || "-"}${enforced.maxAge === undefined ? "" : `, max_age ${enforced.maxAge}`})`;
  } else if (enforced.kind === "throttle") {
    outcome += ` (retry after ${enforced.retryAfterSeconds}s)`;
  } else if (enforced.kind === "deny") {
    outcome += ` (cause ${enforced.cause})`;
  }
  if (verdict.shadowOf !== undefined) outcome = `allow in shadow mode; enforcing would ${outcome}`;
  return row(
    "verdict",
    `${outcome}; mode ${decision.mode}, failure mode ${decision.failureMode}, policy ${decision.policyVersion}`,
  );
}

function describeMatch(m: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(m)) {
    if (v === undefined) continue;
    parts.push(`${k} ${typeof v === "object" ? JSON.stringify(v) : String(v)}`);
  }
  return parts.length === 0 ? "matches all" : parts.join(", ");
}

function describeCaller(c: Caller | undefined): string {
  if (c === undefined) return "(no caller)";
  return [
    `subject ${c.subject}`,
    `org ${c.org || "-"}`,
    `tier ${c.tier || "-"}`,
    `entitlements ${c.entitlements.join(",") || "-"}`,
    `amr ${c.amr.join(",") || "-"}`,
    `acr ${c.acr || "-"}`,
    `auth_time ${c.authTime === undefined ? "-" : iso(c.authTime * 1000)}`,
  ].join(", ");
}

function describeOp(op: StoreOp): string {
  const key = `${op.key.tag}/${op.key.name}`;
  switch (op.op) {
    case "window":
      // a limited window is the exact one a limit throttles on: its limit is what it enforces
      return op.limit === undefined
        ? `window ${key} (${op.windowMs / 1000} s, +${op.cost})`
        : `window ${key} (limit ${op.limit} per ${op.windowMs / 1000} s, exact, +${op.cost})`;
    case "count":
      return `count ${key} (+${op.cost}, ttl ${op.ttlMs / 1000} s)`;
    case "distinct":
      return `distinct ${key} add ${op.member} (${op.windowMs / 1000} s)`;
    case "swap":
      return `swap ${key} := ${op.value}`;
    case "get":
      return `get ${key}`;
    case "member":
      return `member ${key} add ${op.member} (max ${op.max})`;
    case "has":
      return `has ${key} ${op.member}`;
    case "baseline":
      return `baseline ${key} (+${op.cost}, bucket ${op.bucketMs / 1000} s, alpha ${op.alpha})`;
  }
}

function describeReading(r: unknown): string {
  if (r === undefined) return "(no reading)";
  return JSON.stringify(r, (_k, v: unknown) =>
    typeof v === "number" && !Number.isInteger(v) ? Number(v.toFixed(3)) : v,
  );
}

function detail(text: string | undefined): string {
  return text === undefined || text === "" ? "" : ` (${text})`;
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}
