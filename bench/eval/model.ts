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
  readonly clientId?: string;
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
  ].join("|");
}

/** A label row of labels.jsonl (the replay never reads it). */
export interface LabelRecord {
  readonly request_id: string;
  readonly label: "legit" | "attack";
  readonly group: string;
  readonly actor: string;
}
