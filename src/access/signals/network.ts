import { formatIpv4, parseIp } from "../../geo/ip-address.js";

/**
 * The network a client address belongs to, as one operator's customers are usually given:
 * the /24 of an IPv4 address, the /48 of an IPv6 one (RFC 6177's end-site assignment).
 * Undefined when the text is no address.
 */
export function networkOf(clientIp: string): string | undefined {
  const ip = parseIp(clientIp);
  if (ip === undefined) return undefined;
  if (ip.family === 4) return `${formatIpv4((ip.value & 0xffffff00) >>> 0)}/24`;
  const [w0, w1] = ip.words;
  return `${(w0 >>> 16).toString(16)}:${(w0 & 0xffff).toString(16)}:${(w1 >>> 16).toString(16)}::/48`;
}
