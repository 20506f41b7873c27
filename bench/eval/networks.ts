/**
 * Addresses of two kinds of shared networks, found like the others in places.ts: ranges of the
 * operator's ASN in the embedded ASN data (@ip-location-db/asn), sampled and kept where the
 * embedded DB-IP City Lite database places them in the listed city (checked by
 * test/unit/eval-generator.test.ts). Chosen for where people are, never to trigger or avoid a
 * signal.
 */

/** One location of a commercial VPN: the exit servers a client picks from when it connects. */
export interface VpnLocation {
  /** The hosting network the VPN rents (M247 AS9009, Datacamp/CDN77 AS212238). */
  readonly asn: number;
  readonly country: string;
  readonly city: string;
  readonly ips: readonly string[];
}

const vpn = (asn: number, country: string, city: string, ips: string[]): VpnLocation => ({
  asn,
  country,
  city,
  ips,
});

/** Commercial VPN exit locations (the big consumer VPNs rent these networks). */
export const VPN_LOCATIONS = {
  frankfurt: vpn(9009, "DE", "Frankfurt am Main", [
    "2.57.248.85",
    "2.57.249.170",
    "2.57.250.84",
    "5.157.132.85",
  ]),
  berlin: vpn(9009, "DE", "Berlin", ["5.157.168.170", "5.157.171.84", "31.186.36.127"]),
  amsterdam: vpn(9009, "NL", "Amsterdam", [
    "2.57.251.169",
    "2.58.44.85",
    "37.120.141.84",
    "37.120.239.84",
  ]),
  london: vpn(9009, "GB", "London", ["2.58.47.169", "5.61.61.170", "5.252.196.21", "5.253.45.21"]),
  paris: vpn(9009, "FR", "Paris", ["2.57.68.85", "2.57.69.170", "2.57.70.84", "2.57.71.169"]),
  stockholm: vpn(9009, "SE", "Stockholm", ["31.13.191.169", "38.180.56.148", "45.12.220.85"]),
  newYork: vpn(212238, "US", "New York", [
    "2.26.157.21",
    "14.102.226.21",
    "14.102.232.21",
    "31.14.66.42",
  ]),
  toronto: vpn(212238, "CA", "Toronto", [
    "5.181.166.21",
    "31.222.216.85",
    "31.222.217.170",
    "37.19.209.106",
  ]),
  warsaw: vpn(212238, "PL", "Warsaw", ["23.27.62.21", "23.27.132.21", "23.27.225.21"]),
} as const satisfies Record<string, VpnLocation>;

export type VpnLocationName = keyof typeof VPN_LOCATIONS;

/** A mobile carrier's public CGNAT pool in one country: one address carries many subscribers. */
export interface CarrierPool {
  readonly carrier: string;
  readonly asn: number;
  readonly country: string;
  /** Address and the city DB-IP places it in (pools span regional gateways). */
  readonly ips: readonly (readonly [ip: string, city: string])[];
}

export const CARRIERS = {
  telefonicaDe: {
    carrier: "Telefonica Germany",
    asn: 6805,
    country: "DE",
    ips: [
      ["46.114.42.170", "Berlin"],
      ["2.215.85.84", "Munich"],
      ["77.9.85.84", "Munich"],
      ["82.113.125.84", "Munich"],
      ["77.177.85.85", "Dusseldorf"],
      ["77.1.85.85", "Hamburg"],
      ["62.54.85.84", "Frankfurt am Main"],
    ],
  },
  vodafoneDe: {
    carrier: "Vodafone Germany",
    asn: 3209,
    country: "DE",
    ips: [
      ["77.22.74.170", "Berlin"],
      ["185.206.104.85", "Berlin"],
      ["130.180.53.84", "Dusseldorf"],
      ["5.10.49.85", "Frankfurt am Main"],
      ["31.18.85.84", "Hamburg"],
    ],
  },
  tmobileUs: {
    carrier: "T-Mobile US",
    asn: 21928,
    country: "US",
    ips: [
      ["208.54.45.191", "New York"],
      ["208.54.88.127", "New York"],
      ["24.221.106.170", "Chicago"],
      ["74.60.21.85", "Chicago"],
      ["24.221.21.85", "Atlanta"],
      ["208.54.5.127", "San Jose"],
      ["208.54.153.127", "San Jose"],
      ["206.29.169.84", "Seattle"],
    ],
  },
  verizonUs: {
    carrier: "Verizon Wireless",
    asn: 22394,
    country: "US",
    ips: [
      ["72.97.88.169", "New York"],
      ["75.192.42.170", "New York"],
      ["63.58.42.170", "Newark"],
      ["66.174.21.85", "Newark"],
    ],
  },
  freeMobileFr: {
    carrier: "Free Mobile",
    asn: 51207,
    country: "FR",
    ips: [
      ["37.1.232.170", "Paris"],
      ["37.1.235.84", "Paris"],
      ["37.1.236.170", "Paris"],
    ],
  },
  docomoJp: {
    carrier: "NTT Docomo",
    asn: 9605,
    country: "JP",
    ips: [
      ["110.158.134.191", "Chiyoda"],
      ["110.158.142.63", "Chiyoda"],
      ["110.158.149.191", "Chiyoda"],
      ["49.96.242.63", "Osaka"],
      ["49.97.37.84", "Osaka"],
    ],
  },
} as const satisfies Record<string, CarrierPool>;

export type CarrierName = keyof typeof CARRIERS;
