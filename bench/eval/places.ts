/**
 * Real IPv4 addresses and where the embedded DB-IP City Lite database places them (checked by
 * test/unit/eval-generator.test.ts through src/geo/geo-reader.ts). Found by sampling the
 * database, not taken from any policy. UTC offsets are those of November (no DST in Europe and
 * North America; Sydney is on daylight time).
 */
export interface City {
  readonly country: string;
  /** The city name exactly as DB-IP spells it. */
  readonly city: string;
  readonly utcOffsetHours: number;
  /** Residential / office addresses located in this city. */
  readonly ips: readonly string[];
}

const c = (country: string, city: string, utcOffsetHours: number, ips: string[]): City => ({
  country,
  city,
  utcOffsetHours,
  ips,
});

/** Cities where legitimate users live and work, and from where attackers come. */
export const CITIES = {
  berlin: c("DE", "Berlin", 1, [
    "77.13.90.177",
    "37.44.201.188",
    "78.55.42.109",
    "93.128.223.165",
    "80.132.226.161",
    "217.154.89.64",
  ]),
  munich: c("DE", "Munich", 1, [
    "95.118.247.3",
    "62.245.172.75",
    "95.115.239.22",
    "83.236.114.118",
    "176.2.135.119",
  ]),
  augsburg: c("DE", "Augsburg", 1, [
    "87.147.86.122",
    "79.205.212.135",
    "93.104.56.23",
    "79.194.200.173",
    "84.133.24.200",
    "217.251.145.65",
  ]),
  frankfurt: c("DE", "Frankfurt am Main", 1, [
    "188.99.111.63",
    "78.17.184.151",
    "194.152.58.250",
    "79.219.171.59",
    "178.200.157.137",
  ]),
  mainz: c("DE", "Mainz", 1, ["89.244.84.75", "77.181.149.107", "79.233.239.247", "62.187.3.208"]),
  hamburg: c("DE", "Hamburg", 1, [
    "77.14.249.116",
    "79.199.184.34",
    "77.6.5.5",
    "31.18.150.24",
    "95.113.30.64",
  ]),
  cologne: c("DE", "Cologne", 1, ["89.0.184.67", "80.130.41.51", "83.169.63.235", "80.171.65.67"]),
  london: c("GB", "London", 0, [
    "157.31.216.219",
    "141.241.123.94",
    "146.77.43.147",
    "143.226.89.9",
  ]),
  manchester: c("GB", "Manchester", 0, [
    "195.171.132.62",
    "217.206.114.136",
    "90.210.164.24",
    "217.38.65.144",
    "94.6.120.13",
  ]),
  paris: c("FR", "Paris", 1, ["217.167.10.7", "93.11.59.112", "77.152.88.225", "82.249.251.76"]),
  amsterdam: c("NL", "Amsterdam", 1, ["188.207.106.55", "145.15.115.187", "178.214.122.52"]),
  madrid: c("ES", "Madrid", 1, [
    "195.53.127.24",
    "92.191.34.123",
    "92.186.98.38",
    "88.30.65.52",
    "89.60.242.57",
  ]),
  warsaw: c("PL", "Warsaw", 1, [
    "87.207.4.199",
    "87.96.31.180",
    "94.254.142.14",
    "78.143.4.207",
    "80.54.245.108",
  ]),
  stockholm: c("SE", "Stockholm", 1, [
    "95.205.163.133",
    "85.224.240.183",
    "90.229.152.40",
    "88.129.59.172",
    "82.183.110.11",
  ]),
  zurich: c("CH", "Zurich", 1, ["87.239.215.248", "212.35.36.242", "193.178.156.95"]),
  milan: c("IT", "Milan", 1, [
    "5.169.64.109",
    "31.194.68.239",
    "5.95.230.143",
    "94.88.76.112",
    "94.90.24.198",
  ]),
  newYork: c("US", "New York", -5, [
    "96.232.233.108",
    "71.240.95.40",
    "63.65.91.150",
    "174.239.133.41",
  ]),
  newark: c("US", "Newark", -5, [
    "70.211.149.206",
    "72.76.80.61",
    "74.88.104.124",
    "71.172.228.19",
    "70.198.251.154",
  ]),
  boston: c("US", "Boston", -5, [
    "73.216.78.140",
    "71.96.153.107",
    "174.234.154.79",
    "67.153.69.129",
  ]),
  chicago: c("US", "Chicago", -6, [
    "75.56.162.152",
    "162.164.95.31",
    "76.234.192.163",
    "208.59.189.151",
  ]),
  austin: c("US", "Austin", -6, [
    "168.34.74.72",
    "206.59.252.199",
    "128.83.26.33",
    "146.84.53.104",
  ]),
  sanFrancisco: c("US", "San Francisco", -8, [
    "135.84.35.223",
    "67.111.12.238",
    "69.59.160.227",
    "209.139.105.222",
  ]),
  sanJose: c("US", "San Jose", -8, [
    "66.201.52.55",
    "75.139.175.52",
    "173.29.131.43",
    "64.252.121.57",
  ]),
  seattle: c("US", "Seattle", -8, [
    "75.239.243.112",
    "70.130.252.214",
    "98.237.235.177",
    "71.24.188.121",
  ]),
  toronto: c("CA", "Toronto", -5, [
    "206.32.144.53",
    "24.80.212.96",
    "75.119.241.5",
    "204.167.190.143",
  ]),
  saoPaulo: c("BR", "Sao Paulo", -3, [
    "191.29.59.53",
    "201.52.35.13",
    "187.83.198.220",
    "179.131.45.47",
    "177.90.91.5",
    "179.149.52.228",
  ]),
  rio: c("BR", "Rio de Janeiro", -3, [
    "201.10.44.155",
    "189.77.180.23",
    "177.23.204.2",
    "187.67.47.27",
    "201.17.92.201",
  ]),
  tokyo: c("JP", "Chiyoda City", 9, [
    "133.231.79.60",
    "153.236.127.46",
    "153.190.121.44",
    "114.157.251.94",
    "210.130.115.234",
  ]),
  osaka: c("JP", "Osaka", 9, [
    "119.229.128.235",
    "211.125.200.171",
    "223.217.233.31",
    "153.235.253.221",
  ]),
  singapore: c("SG", "Singapore", 8, [
    "129.126.241.248",
    "141.230.139.25",
    "146.160.177.153",
    "103.209.165.103",
  ]),
  sydney: c("AU", "Sydney", 11, [
    "101.166.131.6",
    "203.202.53.178",
    "101.170.233.41",
    "110.150.181.225",
    "1.129.127.142",
  ]),
  bengaluru: c("IN", "Bengaluru", 5.5, [
    "117.220.199.86",
    "218.248.172.222",
    "59.99.22.205",
    "117.241.219.144",
    "117.198.46.146",
  ]),
  mumbai: c("IN", "Mumbai", 5.5, [
    "120.62.202.245",
    "182.156.115.171",
    "202.68.139.185",
    "60.243.233.237",
    "182.60.185.204",
  ]),
  moscow: c("RU", "Moscow", 3, [
    "85.116.124.92",
    "82.179.164.244",
    "188.170.231.229",
    "89.235.140.164",
    "94.124.197.8",
  ]),
  kyiv: c("UA", "Kyiv", 2, [
    "80.77.46.205",
    "212.109.60.228",
    "37.57.29.146",
    "94.27.45.73",
    "37.53.18.207",
  ]),
  hanoi: c("VN", "Hanoi", 7, [
    "14.162.82.240",
    "14.180.202.9",
    "123.27.96.35",
    "42.114.154.171",
    "113.164.121.5",
    "116.103.95.180",
  ]),
  jakarta: c("ID", "Jakarta", 7, [
    "120.164.20.129",
    "39.211.94.196",
    "36.91.102.117",
    "39.213.180.206",
    "36.64.129.49",
    "180.242.163.7",
  ]),
  shanghai: c("CN", "Shanghai", 8, [
    "101.80.76.5",
    "111.187.99.163",
    "218.81.70.159",
    "112.65.204.143",
    "180.174.241.229",
  ]),
} as const satisfies Record<string, City>;

export type CityName = keyof typeof CITIES;

/** A cloud region: real provider address ranges, and where DB-IP places these addresses. */
export interface CloudRegion {
  readonly provider: string;
  readonly region: string;
  readonly country: string;
  readonly city: string;
  readonly ips: readonly string[];
}

const r = (
  provider: string,
  region: string,
  country: string,
  city: string,
  ips: string[],
): CloudRegion => ({
  provider,
  region,
  country,
  city,
  ips,
});

/** Ranges from the providers' published lists (AWS ip-ranges.json, GCP cloud.json, Azure service tags, provider RIR records). */
export const CLOUD = {
  awsFrankfurt: r("aws", "eu-central-1", "DE", "Frankfurt am Main", [
    "3.120.1.10",
    "3.121.1.10",
    "3.122.1.10",
    "3.124.1.10",
    "3.125.1.10",
  ]),
  awsVirginia: r("aws", "us-east-1", "US", "Ashburn", [
    "3.80.1.10",
    "3.81.1.10",
    "3.82.1.10",
    "3.83.1.10",
    "3.84.1.10",
    "3.85.1.10",
  ]),
  awsDublin: r("aws", "eu-west-1", "IE", "Dublin", [
    "34.240.1.10",
    "34.241.1.10",
    "34.242.1.10",
    "34.243.1.10",
    "34.244.1.10",
  ]),
  awsSingapore: r("aws", "ap-southeast-1", "SG", "Singapore", [
    "13.212.1.10",
    "13.213.1.10",
    "13.228.1.10",
    "13.229.1.10",
    "13.250.1.10",
  ]),
  gcpFrankfurt: r("gcp", "europe-west3", "DE", "Frankfurt am Main", [
    "34.107.1.10",
    "34.141.1.10",
    "35.198.77.42",
    "35.206.1.10",
  ]),
  gcpLondon: r("gcp", "europe-west2", "GB", "London", [
    "34.89.1.10",
    "35.189.77.42",
    "35.214.1.10",
    "35.246.1.10",
  ]),
  gcpIowa: r("gcp", "us-central1", "US", "Council Bluffs", [
    "35.184.1.10",
    "35.188.1.10",
    "35.192.1.10",
    "35.193.1.10",
    "35.194.1.10",
  ]),
  gcpSaoPaulo: r("gcp", "southamerica-east1", "BR", "Sao Paulo", [
    "34.95.163.144",
    "35.198.1.10",
    "35.199.77.42",
    "35.247.201.160",
  ]),
  azureAmsterdam: r("azure", "westeurope", "NL", "Amsterdam", [
    "20.50.1.10",
    "20.61.1.10",
    "20.71.1.10",
    "20.73.1.10",
  ]),
  azureVirginia: r("azure", "eastus", "US", "Washington", [
    "20.81.1.10",
    "20.102.1.10",
    "20.115.1.10",
    "20.120.1.10",
  ]),
  doAmsterdam: r("digitalocean", "ams3", "NL", "Amsterdam", [
    "167.99.37.12",
    "167.71.1.10",
    "167.172.37.12",
    "134.209.201.160",
  ]),
  doFrankfurt: r("digitalocean", "fra1", "DE", "Frankfurt am Main", [
    "167.99.240.183",
    "167.71.37.12",
    "142.93.163.144",
    "138.68.77.42",
  ]),
  doSingapore: r("digitalocean", "sgp1", "SG", "Singapore (Pioneer)", [
    "159.89.201.160",
    "159.65.1.10",
    "167.71.201.160",
    "139.59.121.100",
  ]),
  hetznerHelsinki: r("hetzner", "hel1", "FI", "Helsinki", [
    "95.216.1.10",
    "95.217.1.10",
    "65.108.1.10",
    "65.21.1.10",
    "135.181.1.10",
  ]),
  hetznerNuremberg: r("hetzner", "nbg1", "DE", "Nuremberg", [
    "116.203.1.10",
    "136.243.163.144",
    "157.90.121.100",
    "159.69.1.10",
  ]),
  ovhRoubaix: r("ovh", "rbx", "FR", "Roubaix", [
    "51.38.1.10",
    "51.68.1.10",
    "51.75.1.10",
    "51.83.1.10",
    "51.91.1.10",
  ]),
} as const satisfies Record<string, CloudRegion>;

export type CloudName = keyof typeof CLOUD;

/**
 * Addresses of the kind block-list feeds carry (Tor exits in AS208294/AS60729 ranges, a
 * Spamhaus-DROP-style hosting range). The example policy's list file
 * `policies/lists/known-bad.netset` is the operator's copy of such a feed; the test checks that
 * these addresses are on it, which is what makes this attack family "block-listed".
 */
export const BLOCKLISTED_IPS: readonly string[] = [
  "185.220.101.4",
  "185.220.101.37",
  "185.220.100.252",
  "192.42.116.16",
  "204.8.96.81",
  "45.141.215.17",
];
