import { join } from "node:path";

/** One service of the platform as the local tooling starts it. */
export interface PlatformService {
  /** Service account name, also the directory under `apps/` and the SVID file name. */
  readonly name: string;
  /** Default gRPC port. */
  readonly port: number;
}

/** The five services, in the order they are started (token first: auth-edge needs its JWKS). */
export const PLATFORM_SERVICES: readonly PlatformService[] = Object.freeze([
  { name: "token", port: 50052 },
  { name: "auth-edge", port: 50051 },
  { name: "session-identity", port: 50053 },
  { name: "iam-policy", port: 50054 },
  { name: "mfa", port: 50055 },
]);

/** Where `npm run build` writes the bundle of service `name` (see build-services.ts). */
export function bundlePath(root: string, name: string): string {
  return join(root, "apps", name, "dist", "main.js");
}
