import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** What the fake endpoint answers for a token: JSON, a status, garbage, or never. */
export type Behaviour =
  | { readonly json: Record<string, unknown> }
  | { readonly status: number }
  | { readonly garbage: string }
  | "hang";

/**
 * A local RFC 7662 endpoint: checks the client's Basic credentials, reads the form's `token`
 * and answers as `behave(token)` says. Counts calls. Each test starts its own on port 0.
 */
export async function startIntrospectionServer(
  behave: (token: string) => Behaviour,
  client = { id: "riskgate", secret: "s3cret" },
): Promise<{ url: string; calls: () => number; close(): Promise<void> }> {
  let calls = 0;
  const expected = `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString("base64")}`;
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      calls++;
      if (req.headers.authorization !== expected) {
        res.writeHead(401).end('{"error":"invalid_client"}');
        return;
      }
      const token = new URLSearchParams(body).get("token") ?? "";
      const b = behave(token);
      if (b === "hang") return;
      if ("status" in b) res.writeHead(b.status).end();
      else if ("garbage" in b)
        res.writeHead(200, { "content-type": "application/json" }).end(b.garbage);
      else res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(b.json));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/introspect`,
    calls: () => calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
