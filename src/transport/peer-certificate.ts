import { X509Certificate } from "node:crypto";

/** The identities a verified client certificate names: its URI and DNS subject alternative names. */
export interface PeerIdentity {
  /** The first URI SAN (a SPIFFE id in a mesh), "" when none. */
  readonly principal: string;
  /** Every URI and DNS SAN, in the certificate's order. */
  readonly names: readonly string[];
}

const NONE: PeerIdentity = Object.freeze({ principal: "", names: Object.freeze([]) });

/**
 * The SANs of a PEM certificate as Envoy sends it in `source.certificate` (URL-encoded) or a
 * proxy in a header (URL-encoded or raw PEM, or bare base64 DER as Traefik forwards it).
 * Unreadable input names nothing: the request then carries no peer identity.
 */
export function peerOfCertificate(encoded: string): PeerIdentity {
  if (encoded === "") return NONE;
  try {
    const text = encoded.includes("%") ? decodeURIComponent(encoded) : encoded;
    const body = text.includes("-----BEGIN")
      ? text
      : Buffer.from(text.replace(/\s+/g, ""), "base64");
    return namesOf(new X509Certificate(body).subjectAltName ?? "");
  } catch {
    return NONE;
  }
}

/**
 * The peer named by Envoy's `x-forwarded-client-cert` header: the last element (the one the
 * nearest proxy, the one riskgate trusts, appended), its `URI=` and `DNS=` fields; a `Cert=`
 * field is read when there is no URI.
 */
export function peerOfXfcc(value: string): PeerIdentity {
  const elements = splitOutsideQuotes(value, ",");
  const last = elements[elements.length - 1] ?? "";
  const names: string[] = [];
  let cert = "";
  for (const pair of splitOutsideQuotes(last, ";")) {
    const eq = pair.indexOf("=");
    if (eq < 0) continue;
    const key = pair.slice(0, eq).trim().toLowerCase();
    const raw = pair
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, "$1");
    if (key === "uri" || key === "dns") names.push(raw);
    else if (key === "cert") cert = raw;
  }
  if (names.length === 0 && cert !== "") return peerOfCertificate(cert);
  const uri = names.find((n) => n.includes("://")) ?? "";
  return { principal: uri, names };
}

/**
 * The peer a proxy's client-certificate header names: Envoy's XFCC format, or the certificate
 * itself (nginx `$ssl_client_escaped_cert`, Traefik `passTLSClientCert.pem`).
 */
export function peerOfHeader(value: string): PeerIdentity {
  return /(^|[;,])\s*(by|hash|uri|dns|cert|subject)=/i.test(value)
    ? peerOfXfcc(value)
    : peerOfCertificate(value);
}

function namesOf(subjectAltName: string): PeerIdentity {
  const names: string[] = [];
  let principal = "";
  for (const entry of subjectAltName.split(/,\s*/)) {
    const m = /^(URI|DNS):(.*)$/.exec(entry);
    if (m === null) continue;
    const name = (m[2] as string).replace(/^"(.*)"$/, "$1");
    names.push(name);
    if (m[1] === "URI" && principal === "") principal = name;
  }
  return { principal, names };
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === separator && !quoted) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}
