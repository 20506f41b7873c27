import type { MtlsPolicy } from "../../config/policy-identity.js";

type Peer = MtlsPolicy["peers"][number];

/** The policy's peer patterns compiled for lookup: exact names first, then the longest prefix. */
export interface PeerMap {
  /** The mapping of `name`, or undefined when no pattern covers it. */
  find(name: string): Peer | undefined;
}

export function compilePeerMap(peers: readonly Peer[]): PeerMap {
  const exact = new Map<string, Peer>();
  const prefixes: { prefix: string; peer: Peer }[] = [];
  for (const peer of peers) {
    if (peer.principal.endsWith("*")) {
      prefixes.push({ prefix: peer.principal.slice(0, -1), peer });
    } else if (!exact.has(peer.principal)) {
      exact.set(peer.principal, peer);
    }
  }
  // the most specific pattern wins whatever the policy's order
  prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  return {
    find(name) {
      const hit = exact.get(name);
      if (hit !== undefined) return hit;
      for (const p of prefixes) if (name.startsWith(p.prefix)) return p.peer;
      return undefined;
    },
  };
}
