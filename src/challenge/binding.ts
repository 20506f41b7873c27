import { createHash } from "node:crypto";
import { networkOf } from "../access/signals/network.js";

/** What a challenge and a clearance are bound to besides the subject. */
export interface Binding {
  /** The client's /24 (IPv4) or /48 (IPv6), "none" when the address is unknown. */
  readonly net: string;
  /** A hash of the User-Agent (the text itself is never stored in a token). */
  readonly uah: string;
}

/** The binding of a client: its network and a hash of its user agent. */
export function bindingOf(clientIp: string, userAgent: string | undefined): Binding {
  const uah = createHash("sha256")
    .update(userAgent ?? "")
    .digest("base64url")
    .slice(0, 22);
  return { net: networkOf(clientIp) ?? "none", uah };
}
