import type { MtlsPolicy } from "../../config/policy-identity.js";
import { deepFreeze } from "../../deep-freeze.js";
import type { Caller } from "../license.js";
import type { AccessRequest } from "../request.js";
import type { IdentitySource, SourceOutcome } from "./identity-source.js";
import { compilePeerMap } from "./peer-map.js";

/**
 * Mesh peers: the principal Envoy verified (`source.principal`, a SPIFFE id) or a name of the
 * peer's certificate (URI/DNS SANs), mapped to a caller by the policy's `identity.mtls.peers`.
 * No peer identity finds nothing; a peer no pattern covers is `identity.peer_unknown`.
 * Callers are frozen once per mapping and name, so a Check allocates nothing here.
 */
export function createMtlsSource(options: MtlsPolicy): PeerSource {
  const map = compilePeerMap(options.peers);
  const callers = new Map<string, SourceOutcome>();
  const outcomeOf = (name: string, peer: MtlsPolicy["peers"][number]): SourceOutcome => {
    let outcome = callers.get(name);
    if (outcome === undefined) {
      const caller: Caller = {
        subject: peer.subject ?? name,
        org: peer.org,
        tier: peer.tier,
        entitlements: peer.entitlements,
        amr: [],
        acr: "",
        anonymous: false,
      };
      outcome = deepFreeze({
        kind: "verified",
        caller,
        claims: { principal: name },
        source: "mtls",
        cached: false,
        clientClass: peer.client_class,
      });
      // the names are the mesh's own workloads; the bound only guards against a runaway mesh
      if (callers.size >= 10_000) callers.clear();
      callers.set(name, outcome);
    }
    return outcome;
  };
  return {
    method: "mtls",
    identify(req) {
      const names = peerNamesOf(req);
      if (names.length === 0) return undefined;
      for (const name of names) {
        const peer = map.find(name);
        if (peer !== undefined) return outcomeOf(name, peer);
      }
      return {
        kind: "invalid",
        reason: "identity.peer_unknown",
        method: "mtls",
        detail: "no identity.mtls.peers pattern covers the peer",
      };
    },
  };
}

/** The mesh peer source: it answers at once, from the request alone. */
export interface PeerSource extends IdentitySource {
  identify(req: AccessRequest): SourceOutcome | undefined;
}

/** The principal first, then the certificate's names. */
function peerNamesOf(req: AccessRequest): readonly string[] {
  const names = req.peerNames ?? [];
  if (req.principal === "") return names;
  return names.length === 0 ? [req.principal] : [req.principal, ...names];
}
