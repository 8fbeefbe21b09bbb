/**
 * Test support for Properties 16 and 17: generated worlds (a role hierarchy, role grants and a
 * risk threshold) rendered as Cedar bundles, generated requests, and a reference model that
 * decides them in plain TypeScript, written without looking at Cedar: the closure of the role
 * hierarchy plus the attribute rules below, spelled out by hand.
 *
 * @internal
 */
import fc from "fast-check";
import type { AuthorizationRequest, JsonObject, MfaLevel } from "./authorization.ts";
import type { PolicyBundleSource } from "./policy-engine.ts";

export const TYPES = ["document", "folder"] as const;
export const ACTIONS = ["read", "write", "delete"] as const;
export const ROLE_NAMES = ["r0", "r1", "r2", "r3", "r4", "r5"] as const;
const TENANTS = ["acme", "globex"] as const;
const USERS = ["u1", "u2", "u3"] as const;

/** A generated policy world. */
export interface World {
  /** Role → roles it inherits (always earlier in {@link ROLE_NAMES}, so no cycles). */
  readonly inherits: ReadonlyMap<string, readonly string[]>;
  /** Role → `type:action` pairs it grants. */
  readonly grants: ReadonlyMap<string, ReadonlySet<string>>;
  /** Writes and deletes are forbidden at this risk score and above. */
  readonly riskThreshold: number;
}

const SCHEMA = `entity Role in [Role];
entity User in [Role] = { tenant: String, clearance: Long };
entity Document = { tenant: String, owner: User, level: Long };
entity Folder = { tenant: String };
type Ctx = { now: datetime, ip?: ipaddr, mfa_level: Long, risk_score: Long, attributes: { flagged?: Bool } };
action read, write, delete appliesTo { principal: [User], resource: [Document, Folder], context: Ctx };
`;

function rules(world: World): string {
  return `@id("tenant") forbid (principal, action, resource) unless { principal.tenant == resource.tenant };
@id("owner") permit (principal, action in [Action::"read", Action::"write"], resource is Document) when { resource.owner == principal };
@id("clearance") forbid (principal, action, resource is Document) when { resource.level > principal.clearance };
@id("delete-mfa") forbid (principal, action == Action::"delete", resource) unless { context.mfa_level >= 1 };
@id("risk") forbid (principal, action in [Action::"write", Action::"delete"], resource) when { context.risk_score >= ${world.riskThreshold} };
@id("flagged") forbid (principal, action, resource) when { context.attributes has flagged && context.attributes.flagged };
@id("office-folders") permit (principal, action == Action::"read", resource is Folder) when { context has ip && context.ip.isInRange(ip("10.0.0.0/8")) };
`;
}

/** The IDs of the forbid policies of every world. */
export const FORBID_IDS: ReadonlySet<string> = new Set([
  "tenant",
  "clearance",
  "delete-mfa",
  "risk",
  "flagged",
]);

/** A world as a bundle: the fixed schema and rules, and `roles.json` from the world. */
export function bundleOf(world: World): PolicyBundleSource {
  const roles = Object.fromEntries(
    ROLE_NAMES.map((name) => {
      const grants: Record<string, string[]> = {};
      for (const pair of [...(world.grants.get(name) ?? [])].sort()) {
        const [type, action] = pair.split(":") as [string, string];
        (grants[type] ??= []).push(action);
      }
      return [name, { inherits: [...(world.inherits.get(name) ?? [])], grants }];
    }),
  );
  return {
    files: [
      { name: "roles.json", text: JSON.stringify({ roles }, null, 2) },
      { name: "rules.cedar", text: rules(world) },
      { name: "schema.cedarschema", text: SCHEMA },
    ],
  };
}

/** Generated worlds. */
export const worldArb: fc.Arbitrary<World> = fc
  .record({
    inherits: fc.tuple(
      ...ROLE_NAMES.map((_, i) => fc.subarray(ROLE_NAMES.slice(0, i) as string[])),
    ),
    grants: fc.tuple(
      ...ROLE_NAMES.map(() => fc.subarray(TYPES.flatMap((t) => ACTIONS.map((a) => `${t}:${a}`)))),
    ),
    riskThreshold: fc.integer({ min: 1, max: 101 }),
  })
  .map(({ inherits, grants, riskThreshold }) => ({
    inherits: new Map(ROLE_NAMES.map((name, i) => [name, inherits[i]!])),
    grants: new Map(ROLE_NAMES.map((name, i) => [name, new Set(grants[i]!)])),
    riskThreshold,
  }));

const MFA_LEVELS: readonly MfaLevel[] = ["none", "multi_factor", "phishing_resistant"];

/** Generated requests against the fixed schema (any world accepts them). */
export const requestArb: fc.Arbitrary<AuthorizationRequest> = fc
  .record({
    user: fc.constantFrom(...USERS),
    roles: fc.subarray([...ROLE_NAMES, "ghost"], { minLength: 1 }),
    tenant: fc.constantFrom(...TENANTS),
    // Mostly within the tenant and unflagged, so that decisions often turn on the roles.
    crossTenant: fc.oneof(
      { arbitrary: fc.constant(false), weight: 4 },
      { arbitrary: fc.constant(true), weight: 1 },
    ),
    clearance: fc.integer({ min: 0, max: 3 }),
    action: fc.constantFrom(...ACTIONS),
    type: fc.constantFrom(...TYPES),
    resourceId: fc.constantFrom("x1", "x2"),
    owner: fc.constantFrom(...USERS),
    level: fc.integer({ min: 0, max: 3 }),
    ip: fc.option(fc.tuple(fc.constantFrom(10, 11, 192), fc.nat(255), fc.nat(255), fc.nat(255)), {
      nil: undefined,
    }),
    mfa: fc.constantFrom(...MFA_LEVELS),
    risk: fc.integer({ min: 0, max: 100 }),
    flagged: fc.option(fc.oneof({ arbitrary: fc.constant(false), weight: 3 }, fc.constant(true)), {
      nil: undefined,
    }),
  })
  .map((r) => ({
    ...r,
    resourceTenant: r.crossTenant ? TENANTS.find((t) => t !== r.tenant)! : r.tenant,
  }))
  .map((r): AuthorizationRequest => ({
    principal: {
      id: r.user,
      kind: "user" as const,
      roles: r.roles,
      attributes: { tenant: r.tenant, clearance: r.clearance },
    },
    action: r.action,
    resource: {
      type: r.type,
      id: r.resourceId,
      attributes: (r.type === "document"
        ? { tenant: r.resourceTenant, owner: r.owner, level: r.level }
        : { tenant: r.resourceTenant }) as JsonObject,
    },
    context: {
      ipAddress: r.ip ? r.ip.join(".") : "",
      requestTimeMs: 1_700_000_000_000,
      mfaLevel: r.mfa,
      riskScore: r.risk,
      sessionId: "",
      clientId: "",
      callerSpiffeId: "",
      attributes: r.flagged === undefined ? {} : { flagged: r.flagged },
    },
  }));

/** The reference decision: whether it is allowed, and whether a forbid rule applies. */
export function referenceDecision(
  world: World,
  request: AuthorizationRequest,
): { readonly allowed: boolean; readonly forbidden: boolean } {
  const roles = new Set<string>();
  const pending = request.principal.roles.filter((role) => world.inherits.has(role));
  while (pending.length > 0) {
    const role = pending.pop()!;
    if (roles.has(role)) continue;
    roles.add(role);
    pending.push(...world.inherits.get(role)!);
  }
  const p = request.principal.attributes as { tenant: string; clearance: number };
  const r = request.resource.attributes as { tenant: string; owner?: string; level?: number };
  const { action } = request;
  const type = request.resource.type;
  const ctx = request.context;
  const writes = action === "write" || action === "delete";
  const fromOffice = ctx.ipAddress.startsWith("10.");

  const permitted =
    [...roles].some((role) => world.grants.get(role)!.has(`${type}:${action}`)) ||
    (type === "document" &&
      (action === "read" || action === "write") &&
      r.owner === request.principal.id) ||
    (type === "folder" && action === "read" && fromOffice);
  const forbidden =
    p.tenant !== r.tenant ||
    (type === "document" && r.level! > p.clearance) ||
    (action === "delete" && ctx.mfaLevel === "none") ||
    (writes && ctx.riskScore >= world.riskThreshold) ||
    (ctx.attributes as { flagged?: boolean }).flagged === true;
  return { allowed: permitted && !forbidden, forbidden };
}
