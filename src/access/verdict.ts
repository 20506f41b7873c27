import type { Caller } from "./license.js";
import type { Reason } from "./reasons.js";
import type { ResolvedRoute } from "./routes.js";

/** What the pipeline knew about the caller when it decided (for headers, logs and spans). */
export interface DecisionContext {
  readonly requestId: string;
  readonly score: number;
  readonly reasons: readonly Reason[];
  readonly subject?: string;
  readonly org?: string;
  readonly tier?: string;
  readonly route?: string;
  readonly entitlement?: string;
  /** Set when a verdict would have been stricter but shadow mode allowed it. */
  readonly shadowOf?: VerdictKind;
}

/** Why a deny happened: drives the HTTP status and the gRPC code. */
export type DenyCause = "authentication" | "license" | "risk" | "failure" | "malformed";

export type Verdict =
  | (DecisionContext & { readonly kind: "allow" })
  | (DecisionContext & {
      readonly kind: "challenge";
      /** RFC 9470 acr_values the caller must satisfy ("" when none). */
      readonly acrValues: string;
      /** RFC 9470 max_age in seconds (undefined when none). */
      readonly maxAge?: number;
      /**
       * step_up: 401 to the client; header: allow with a challenge header for the upstream;
       * interactive: a browser is sent to riskgate's challenge page (`location`).
       */
      readonly style: "step_up" | "header" | "interactive";
      /** The challenge page an interactive challenge sends the browser to (same host, relative). */
      readonly location?: string;
    })
  | (DecisionContext & { readonly kind: "throttle"; readonly retryAfterSeconds: number })
  | (DecisionContext & { readonly kind: "deny"; readonly cause: DenyCause });

export type VerdictKind = Verdict["kind"];

/**
 * The decision context of a Check whose caller is known (`tier` undefined: none yet). Built field
 * by field rather than with conditional spreads: this runs on every Check.
 */
export function decisionContext(
  requestId: string,
  route: Pick<ResolvedRoute, "name" | "rule">,
  caller: Pick<Caller, "subject" | "org">,
  tier: string | undefined,
  score: number,
  reasons: readonly Reason[],
): DecisionContext {
  const out: { -readonly [K in keyof DecisionContext]: DecisionContext[K] } = {
    requestId,
    score,
    reasons,
    subject: caller.subject,
    route: route.name,
  };
  if (tier !== undefined) out.tier = tier;
  if (caller.org !== "") out.org = caller.org;
  const entitlement = route.rule?.entitlement;
  if (entitlement !== undefined) out.entitlement = entitlement;
  return out;
}
