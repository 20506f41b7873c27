import { createServer } from "node:http";

/** What one scrape answers. */
export interface Exposition {
  readonly contentType: string;
  readonly body: string;
}

export interface MetricsServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Splits `host:port` (`:9464` for every interface, `[::1]:9464` for IPv6). Throws a TypeError
 * on anything else: the address comes from a validated setting, so this is a caller's bug.
 */
export function parseListenAddress(address: string): { host: string | undefined; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address.trim());
  const port = Number(match?.[3]);
  if (match === null || port > 65535) {
    throw new TypeError(`expected host:port, got ${JSON.stringify(address)}`);
  }
  const host = match[1] ?? match[2];
  return { host: host === "" ? undefined : host, port };
}

/**
 * Serves `GET /metrics` (Prometheus text) on `address`; everything else is 404. The exposition
 * is rendered per scrape by `render`. Resolves once listening.
 */
export async function serveMetrics(
  address: string,
  render: () => Promise<Exposition>,
): Promise<MetricsServer> {
  const { host, port } = parseListenAddress(address);
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if ((req.method !== "GET" && req.method !== "HEAD") || path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    render().then(
      ({ contentType, body }) => {
        res.writeHead(200, { "content-type": contentType });
        res.end(req.method === "HEAD" ? undefined : body);
      },
      (err: unknown) => {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(`metrics unavailable: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  return {
    port: typeof bound === "object" && bound !== null ? bound.port : port,
    close: () =>
      new Promise((resolve) => {
        // a scraper's keep-alive connection would hold close() open until it times out
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
