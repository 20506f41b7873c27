import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A proxy's path (`nginx -v`, `caddy version`), or undefined when it is not installed. */
export function findProxy(name: "nginx" | "caddy"): string | undefined {
  for (const candidate of [name, `/usr/sbin/${name}`, `/usr/bin/${name}`]) {
    try {
      execFileSync(candidate, [name === "caddy" ? "version" : "-v"], {
        stdio: "ignore",
        timeout: 10_000,
      });
      return candidate;
    } catch {
      // next candidate
    }
  }
  return undefined;
}

/** Runs the shipped proxies/caddy/Caddyfile with its addresses from the environment. */
export function startCaddy(
  caddy: string,
  dir: string,
  listen: number,
  riskgate: number,
  upstream: number,
): ChildProcess {
  return spawn(caddy, ["run", "--config", "proxies/caddy/Caddyfile", "--adapter", "caddyfile"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      HOME: dir,
      XDG_DATA_HOME: join(dir, "data"),
      XDG_CONFIG_HOME: join(dir, "config"),
      RISKGATE_PROXY_PORT: String(listen),
      RISKGATE_HTTP: `127.0.0.1:${riskgate}`,
      RISKGATE_UPSTREAM: `127.0.0.1:${upstream}`,
    },
  });
}

/**
 * Runs the shipped proxies/nginx/riskgate.conf in `dir` with its ports replaced: nginx on
 * `listen`, riskgate's HTTP listener on `riskgate`, the upstream on `upstream`.
 */
export function startNginx(
  nginx: string,
  dir: string,
  listen: number,
  riskgate: number,
  upstream: number,
): ChildProcess {
  const site = readFileSync("proxies/nginx/riskgate.conf", "utf8")
    .replace("server 127.0.0.1:9192;", `server 127.0.0.1:${riskgate};`)
    .replace("server 127.0.0.1:8080;", `server 127.0.0.1:${upstream};`)
    .replace("listen 127.0.0.1:8000;", `listen 127.0.0.1:${listen};`);
  writeFileSync(join(dir, "riskgate.conf"), site);
  for (const t of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, t));
  writeFileSync(
    join(dir, "nginx.conf"),
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/riskgate.conf;
}
`,
  );
  return spawn(nginx, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
}
