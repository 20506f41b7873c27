import type { AccessRequest } from "../../src/access/request.js";

/** The decision clock the unit tests freeze: 2026-11-22 12:00:00 UTC. */
export const TEST_NOW = Date.UTC(2026, 10, 22, 12, 0, 0);

/**
 * A normalised request as the transport would hand it to the pipeline: a GET of /v1/items on
 * api.example.com from 203.0.113.7 at {@link TEST_NOW}, with whatever the test overrides.
 */
export function accessRequest(over: Partial<AccessRequest> = {}): AccessRequest {
  return {
    id: "req-1",
    method: "GET",
    host: "api.example.com",
    path: "/v1/items",
    query: "",
    headers: new Map(),
    clientIp: "203.0.113.7",
    size: -1,
    principal: "",
    sni: "",
    contextExtensions: {},
    metadata: {},
    receivedAt: TEST_NOW,
    ...over,
  };
}
