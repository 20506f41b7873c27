import type { IdpShape } from "./idp.js";

/**
 * How an actor answers a refusal in the closed loop (bench/eval/loop.ts):
 * - `person`: steps up (logs in again with MFA) on a challenge, waits out a 429, logs in again
 *   once on a denial and gives up for a while when that is denied too;
 * - `machine`: independent calls; retries a 429 after Retry-After (exponential backoff when
 *   none), drops a refused call and carries on;
 * - `machine-job`: a sequential job; a 429 delays the rest of its run, a refusal aborts the run;
 * - `attacker`: cannot answer a challenge or log in again; waits out a 429 (its whole plan
 *   moves), otherwise keeps to its plan;
 * - `stuffing`: a stuffing tool; drops an account's remaining calls once one is refused.
 */
export type Reaction = "person" | "machine" | "machine-job" | "attacker" | "stuffing";

/** One simulated HTTP request before it is written as an Envoy CheckRequest. */
export interface SimRequest {
  /** Milliseconds since the epoch (the decision clock). */
  readonly t: number;
  readonly label: "legit" | "attack";
  /** Population or attack family name. */
  readonly group: string;
  /** One user, client or attacker campaign. */
  readonly actor: string;
  readonly ip: string;
  readonly port: number;
  readonly method: string;
  readonly path: string;
  readonly userAgent: string;
  readonly deviceId?: string;
  readonly token: TokenSpec;
  readonly bodyBytes?: number;
  /** How the actor reacts to this request's verdict (default: by label and token kind). */
  readonly reaction?: Reaction;
  /** The unit a refusal acts on: a job's run, a stuffing tool's account. */
  readonly run?: string;
}

/** What the identity provider put in the token the request carries. */
export interface TokenSpec {
  readonly sub: string;
  readonly org: string;
  readonly tier: string;
  /** Seconds. */
  readonly iat: number;
  /** Seconds. */
  readonly exp: number;
  readonly amr?: readonly string[];
  /** Seconds. */
  readonly authTime?: number;
  /** Set on a machine (client-credentials) token: the client's name at its IdP. */
  readonly clientId?: string;
  /** The IdP whose token shape a machine token takes. */
  readonly idp?: IdpShape;
}

/** Stable identity of a token: requests with equal keys carry the same JWT string. */
export function tokenKey(t: TokenSpec): string {
  return [
    t.sub,
    t.org,
    t.tier,
    t.iat,
    t.exp,
    (t.amr ?? []).join(" "),
    t.authTime ?? "",
    t.clientId ?? "",
    t.idp ?? "",
  ].join("|");
}

/** A label row of labels.jsonl (the replay never reads it). */
export interface LabelRecord {
  readonly request_id: string;
  readonly label: "legit" | "attack";
  readonly group: string;
  readonly actor: string;
}
