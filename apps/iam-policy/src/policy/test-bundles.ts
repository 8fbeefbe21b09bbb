/**
 * Test support: the default bundle of the repository and requests against it.
 *
 * @internal
 */
import { resolve } from "node:path";
import type { AuthorizationRequest, ContextInput, JsonObject } from "./authorization.ts";
import { readPolicyBundle } from "./policy-bundle.ts";
import type { PolicyBundleSource } from "./policy-engine.ts";

/** The default bundle shipped in `apps/iam-policy/policies`. */
export const DEFAULT_POLICY_DIR = resolve(import.meta.dirname, "../../policies");

/** The default bundle's files. */
export function defaultBundle(): Promise<PolicyBundleSource> {
  return readPolicyBundle(DEFAULT_POLICY_DIR);
}

/** `bundle` with some files replaced or added (`undefined` removes a file). */
export function withFiles(
  bundle: PolicyBundleSource,
  changes: Readonly<Record<string, string | undefined>>,
): PolicyBundleSource {
  const files = new Map(bundle.files.map((f) => [f.name, f.text]));
  for (const [name, text] of Object.entries(changes)) {
    if (text === undefined) files.delete(name);
    else files.set(name, text);
  }
  return {
    files: [...files].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, text]) => ({ name, text })),
  };
}

/** Overrides of {@link documentRequest}. */
export interface RequestOverrides {
  readonly roles?: readonly string[];
  readonly action?: string;
  readonly principalId?: string;
  readonly principalAttributes?: JsonObject;
  readonly resourceType?: string;
  readonly resourceId?: string;
  readonly resourceAttributes?: JsonObject;
  readonly context?: Partial<ContextInput>;
}

/** A request by alice of tenant acme to read bob's internal document d-1 of acme. */
export function documentRequest(overrides: RequestOverrides = {}): AuthorizationRequest {
  return {
    principal: {
      id: overrides.principalId ?? "alice",
      kind: "user",
      roles: overrides.roles ?? [],
      attributes: overrides.principalAttributes ?? { tenant: "acme" },
    },
    action: overrides.action ?? "read",
    resource: {
      type: overrides.resourceType ?? "document",
      id: overrides.resourceId ?? "d-1",
      attributes: overrides.resourceAttributes ?? {
        tenant: "acme",
        owner: "bob",
        classification: "internal",
      },
    },
    context: {
      ipAddress: "",
      requestTimeMs: Date.parse("2026-03-02T10:00:00Z"),
      mfaLevel: "none",
      riskScore: 0,
      sessionId: "",
      clientId: "",
      callerSpiffeId: "",
      attributes: {},
      ...overrides.context,
    },
  };
}
