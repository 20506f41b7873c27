import type { Reason } from "./reasons.js";

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
