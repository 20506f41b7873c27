import { type IncomingHttpHeaders, request } from "node:http";

export interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One HTTP/1.1 request to 127.0.0.1 on a fresh connection, with the path sent exactly as given
 * (no dot-segment cleanup); resolves with the status, headers and body text.
 */
export function httpCall(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}
