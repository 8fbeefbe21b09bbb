// The CommonJS build loads the WebAssembly synchronously when imported; the default ESM build
// expects a bundler.
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import type {
  CedarValueJson,
  DetailedError,
  EntityJson,
  EntityUidJson,
  PolicyJson,
} from "@cedar-policy/cedar-wasm/nodejs";
import { ServiceError } from "@authplat/errors";
import type {
  AuthorizationRequest,
  ContextInput,
  MfaLevel,
  Permission,
  PolicyDecision,
  UserPermissions,
} from "./authorization.ts";
import {
  buildSchemaModel,
  cedarTypeName,
  resourceTypeName,
  type CedarAction,
  type CedarSchemaModel,
  type CedarType,
} from "./cedar-schema-model.ts";
import { toCedarRecord } from "./cedar-values.ts";
import { isIpOrRange } from "./cedar-values.ts";
import {
  bundleVersion,
  lineAt,
  POLICY_FILE_SUFFIX,
  ROLES_FILE,
  SCHEMA_FILE,
} from "./policy-bundle.ts";
import {
  BundleError,
  type BundleFile,
  type BundleProblem,
  type CompiledPolicies,
  type PolicyBundleSource,
  type PolicyEngine,
  type PreparedRequest,
} from "./policy-engine.ts";
import { RoleHierarchy } from "./role-hierarchy.ts";

/** Entity type of roles; users and services are members of roles, roles of their parents. */
export const ROLE_TYPE = "Role";
/** Entity type of `user` principals. */
export const USER_TYPE = "User";
/** Entity type of `service` principals. */
export const SERVICE_TYPE = "Service";

/** Context attributes the service fills from the request, with the type each must have. */
const CONTEXT_FIELDS: Readonly<Record<string, string>> = {
  now: "datetime",
  ip: "ipaddr",
  mfa_level: "Long",
  risk_score: "Long",
  session_id: "String",
  client_id: "String",
  caller: "String",
  attributes: "Record",
};

/** `context.mfa_level` values: 0 one factor, 1 multi-factor, 2 phishing-resistant. */
export const MFA_LEVEL_VALUES: Readonly<Record<MfaLevel, number>> = {
  none: 0,
  multi_factor: 1,
  phishing_resistant: 2,
};

function invalid(message: string): ServiceError {
  return new ServiceError("INVALID_ARGUMENT", message);
}

/** Names of preparsed policy sets and schemas no live compiled set uses, for reuse. */
const freeSlots: string[] = [];
let slotCount = 0;

function allocateSlot(): string {
  return freeSlots.pop() ?? `iam-policy-${slotCount++}`;
}

/** Where a policy came from, to locate validation errors. */
interface PolicySource {
  readonly id: string;
  readonly file: string;
  /** Line of the policy's first character in `file`. */
  readonly line: number;
  readonly text: string;
  readonly effect: "permit" | "forbid";
  readonly json: PolicyJson;
}

interface CedarCall {
  readonly principal: EntityUidJson;
  readonly action: { readonly type: "Action"; readonly id: string };
  readonly resource: EntityUidJson;
  readonly context: Record<string, CedarValueJson>;
  readonly entities: EntityJson[];
}

interface CedarPrepared extends PreparedRequest {
  readonly owner: CedarPolicies;
  readonly call: CedarCall;
}

/**
 * The Cedar backend of {@link PolicyEngine}. A bundle is a Cedar schema, `roles.json` (the role
 * hierarchy and each role's unconditional grants, turned into `permit` policies with IDs
 * `role/<role>/<resource_type>`) and `*.cedar` policy files (IDs from `@id("...")`, otherwise
 * `<file>#<n>`). Every policy is validated against the schema in strict mode; the set is parsed
 * once per load (`preparsePolicySet`) and each decision passes only the entities it needs.
 */
export class CedarEngine implements PolicyEngine {
  compile(bundle: PolicyBundleSource): CompiledPolicies {
    return CedarPolicies.compile(bundle);
  }
}

class CedarPolicies implements CompiledPolicies {
  readonly version: string;
  readonly warnings: readonly string[];
  readonly #schema: CedarSchemaModel;
  readonly #roles: RoleHierarchy;
  readonly #slot: string;
  readonly #forbids: ReadonlySet<string>;
  /** Request resource type → Cedar entity type. */
  readonly #resourceTypes: ReadonlyMap<string, string>;
  /** Actions some applicable policy of which reads `context.now`. */
  readonly #timeSensitive: ReadonlySet<string>;
  /** Role → the permissions its own policies grant (not inherited ones). */
  readonly #grants: ReadonlyMap<string, readonly Permission[]>;
  #disposed = false;

  private constructor(fields: {
    version: string;
    warnings: string[];
    schema: CedarSchemaModel;
    roles: RoleHierarchy;
    slot: string;
    policies: readonly PolicySource[];
  }) {
    this.version = fields.version;
    this.warnings = fields.warnings;
    this.#schema = fields.schema;
    this.#roles = fields.roles;
    this.#slot = fields.slot;
    this.#forbids = new Set(fields.policies.filter((p) => p.effect === "forbid").map((p) => p.id));
    this.#resourceTypes = new Map(
      [...fields.schema.entityTypes.keys()].map((type) => [resourceTypeName(type), type]),
    );
    this.#timeSensitive = new Set(
      fields.policies
        .filter((p) => readsContextAttribute(p.json.conditions, "now"))
        .flatMap((p) => matchingActions(p.json, fields.schema)),
    );
    this.#grants = grantsByRole(fields.policies, fields.schema);
  }

  static compile(bundle: PolicyBundleSource): CedarPolicies {
    const problems: BundleProblem[] = [];
    const file = (name: string) => bundle.files.find((f) => f.name === name);
    const schemaFile = file(SCHEMA_FILE);
    const rolesFile = file(ROLES_FILE);
    if (!schemaFile)
      problems.push({ file: SCHEMA_FILE, message: "missing: a bundle needs a Cedar schema" });
    if (!rolesFile)
      problems.push({ file: ROLES_FILE, message: "missing: a bundle needs a role hierarchy" });
    if (!schemaFile || !rolesFile) throw new BundleError(problems);

    const schema = loadSchema(schemaFile);
    const roles = RoleHierarchy.parse(rolesFile);
    problems.push(...checkRoleGrants(roles, schema, rolesFile.name));

    const policies: PolicySource[] = [];
    for (const policyFile of bundle.files.filter((f) => f.name.endsWith(POLICY_FILE_SUFFIX))) {
      policies.push(...parsePolicyFile(policyFile, problems));
    }
    policies.push(...rolePolicies(roles, rolesFile.name));
    const seen = new Map<string, PolicySource>();
    for (const policy of policies) {
      const earlier = seen.get(policy.id);
      if (earlier) {
        problems.push({
          file: policy.file,
          line: policy.line,
          message: `policy ID "${policy.id}" is also used at ${earlier.file}:${earlier.line}`,
        });
      }
      seen.set(policy.id, policy);
      const role = principalRole(policy.json);
      if (role !== undefined && !roles.has(role)) {
        problems.push({
          file: policy.file,
          line: policy.line,
          message: `unknown role "${role}" (not in ${ROLES_FILE})`,
        });
      }
    }
    if (problems.length > 0) throw new BundleError(problems);

    const warnings = validatePolicies(schemaFile, policies, problems);
    if (problems.length > 0) throw new BundleError(problems);

    // One preparsed set per action, holding only the policies whose action scope can match it:
    // the scope is static, so this slicing is exact, and each decision evaluates a few policies
    // instead of all of them.
    const slot = allocateSlot();
    for (const action of schema.actions.keys()) {
      const subset = policies.filter((p) => matchingActions(p.json, schema).includes(action));
      const parsed = cedar.preparsePolicySet(`${slot}/${action}`, {
        staticPolicies: Object.fromEntries(subset.map((p) => [p.id, p.text])),
      });
      if (parsed.type === "failure") {
        freeSlots.push(slot);
        throw new BundleError(parsed.errors.map((e) => ({ file: "(bundle)", message: e.message })));
      }
    }
    return new CedarPolicies({
      version: bundleVersion(bundle),
      warnings,
      schema,
      roles,
      slot,
      policies,
    });
  }

  prepare(request: AuthorizationRequest, nowMs: number): CedarPrepared {
    const { principal, resource } = request;
    if (principal.id === "") throw invalid("principal.subject_id is required");
    const principalType = principal.kind === "user" ? USER_TYPE : SERVICE_TYPE;
    const principalEntity = this.#schema.entityTypes.get(principalType);
    if (!principalEntity)
      throw invalid(`principal.type: ${principal.kind} principals are not in the policy schema`);
    if (request.action === "") throw invalid("action is required");
    const action = this.#schema.actions.get(request.action);
    if (!action) throw invalid(`action: unknown action "${request.action}"`);
    if (resource.type === "") throw invalid("resource.type is required");
    const resourceType = this.#resourceTypes.get(resource.type);
    if (!resourceType || resourceType === ROLE_TYPE) {
      throw invalid(`resource.type: unknown resource type "${resource.type}"`);
    }
    if (!action.resourceTypes.includes(resourceType)) {
      throw invalid(
        `action "${request.action}" does not apply to resource type "${resource.type}"`,
      );
    }
    if (!action.principalTypes.includes(principalType)) {
      throw invalid(`action "${request.action}" does not apply to ${principal.kind} principals`);
    }

    const assigned = [...new Set(principal.roles.filter((role) => this.#roles.has(role)))].sort();
    const principalAttrs = toCedarRecord(
      principal.attributes,
      principalEntity.shape,
      "principal.attributes",
    );
    const resourceAttrs = toCedarRecord(
      resource.attributes,
      this.#schema.entityTypes.get(resourceType)!.shape,
      "resource.attributes",
    );
    const timeSensitive = this.#timeSensitive.has(request.action);
    const context = buildContext(
      request.context,
      action,
      request.action,
      timeSensitive ? nowMs : undefined,
    );

    const principalUid = { type: principalType, id: principal.id };
    const resourceUid = { type: resourceType, id: resource.id };
    // The hierarchy is flattened onto the principal: its parents are every role it has, directly
    // or inherited, so `principal in Role::"viewer"` holds for an editor without passing role
    // entities (fewer entities, faster decisions; roles carry no attributes).
    const parents = this.#roles.effectiveRoles(assigned).map((id) => ({ type: ROLE_TYPE, id }));
    const sameEntity = principalType === resourceType && principal.id === resource.id;
    const entities: EntityJson[] = [
      {
        uid: principalUid,
        attrs: sameEntity ? mergeAttributes(principalAttrs, resourceAttrs) : principalAttrs,
        parents,
      },
    ];
    if (!sameEntity) entities.push({ uid: resourceUid, attrs: resourceAttrs, parents: [] });
    // Everything a decision can depend on, in a canonical order: the role closure is a function
    // of the assigned roles, and the context holds the time only when a policy for this action
    // reads it.
    const cacheKey = JSON.stringify([
      principalType,
      principal.id,
      assigned,
      principalAttrs,
      request.action,
      resourceType,
      resource.id,
      resourceAttrs,
      context,
    ]);
    return {
      cacheKey,
      owner: this,
      call: {
        principal: principalUid,
        action: { type: "Action", id: request.action },
        resource: resourceUid,
        context,
        entities,
      },
    };
  }

  decide(prepared: PreparedRequest): PolicyDecision {
    const mine = prepared as CedarPrepared;
    if (mine.owner !== this) throw new Error("request prepared by another policy set");
    if (this.#disposed) throw new Error(`policy set ${this.version} was disposed`);
    // No schema in the call: prepare() has already typed every value against the schema and
    // checked that the action applies, and Cedar's second pass over the same input was measured
    // to cost about a third of a decision.
    const answer = cedar.statefulIsAuthorized({
      ...mine.call,
      preparsedPolicySetId: `${this.#slot}/${mine.call.action.id}`,
    });
    if (answer.type === "failure") {
      throw invalid(
        `request does not conform to the policy schema: ${firstMessage(answer.errors)}`,
      );
    }
    const { decision, diagnostics } = answer.response;
    // Cedar skips a policy whose evaluation fails; for a forbid that would fail open.
    const failedForbids = diagnostics.errors
      .map((e) => e.policyId)
      .filter((id) => this.#forbids.has(id));
    if (failedForbids.length > 0) {
      return {
        allowed: false,
        policyIds: [...new Set(failedForbids)].sort(),
        reason: "a forbid policy could not be evaluated (fail closed)",
      };
    }
    const policyIds = [...diagnostics.reason].sort();
    if (decision === "allow") return { allowed: true, policyIds, reason: "permitted by policy" };
    if (policyIds.length > 0) return { allowed: false, policyIds, reason: "forbidden by policy" };
    return { allowed: false, policyIds, reason: "no policy permits" };
  }

  permissionsOf(assigned: readonly string[]): UserPermissions {
    const roles = this.#roles.effectiveRoles(assigned);
    const merged = new Map<string, Permission>();
    for (const role of roles) {
      for (const grant of this.#grants.get(role) ?? []) {
        const key = `${grant.resourceType}\0${grant.action}`;
        const known = merged.get(key);
        merged.set(key, known && !known.conditional ? known : grant);
      }
    }
    const permissions = [...merged.values()].sort(
      (a, b) => compare(a.resourceType, b.resourceType) || compare(a.action, b.action),
    );
    return { roles, permissions };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    freeSlots.push(this.#slot);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function firstMessage(errors: readonly DetailedError[]): string {
  return errors[0]?.message ?? "unknown error";
}

function mergeAttributes(
  principal: Record<string, CedarValueJson>,
  resource: Record<string, CedarValueJson>,
): Record<string, CedarValueJson> {
  for (const [key, value] of Object.entries(resource)) {
    if (key in principal && JSON.stringify(principal[key]) !== JSON.stringify(value)) {
      throw invalid(
        `resource.attributes.${key}: differs from principal.attributes.${key} of the same entity`,
      );
    }
  }
  return { ...resource, ...principal };
}

function buildContext(
  input: ContextInput,
  action: CedarAction,
  actionName: string,
  /** The current time, or undefined when no policy for the action reads `context.now`. */
  nowMs: number | undefined,
): Record<string, CedarValueJson> {
  const declared = action.context.attributes;
  const context: Record<string, CedarValueJson> = {};
  const optional = (
    name: string,
    value: string,
    field: string,
    convert: (v: string) => CedarValueJson,
  ) => {
    const attribute = declared.get(name);
    if (!attribute) return;
    if (value !== "") context[name] = convert(value);
    else if (attribute.required)
      throw invalid(`context.${field} is required for action "${actionName}"`);
  };
  if (input.riskScore < 0 || input.riskScore > 100 || !Number.isInteger(input.riskScore)) {
    throw invalid("context.risk_score: must be an integer from 0 to 100");
  }
  // Without a policy that reads it, `now` is left out: building a datetime is not free, and
  // leaving it in would make every cache key unique.
  if (declared.has("now") && nowMs !== undefined) {
    const ms = input.requestTimeMs ?? nowMs;
    if (!Number.isFinite(ms)) throw invalid("context.request_time: not a valid time");
    context["now"] = { __extn: { fn: "datetime", arg: new Date(ms).toISOString() } };
  }
  optional("ip", input.ipAddress, "ip_address", (ip) => {
    if (!isIpOrRange(ip)) throw invalid("context.ip_address: not an IP address");
    return { __extn: { fn: "ip", arg: ip } };
  });
  if (declared.has("mfa_level")) context["mfa_level"] = MFA_LEVEL_VALUES[input.mfaLevel];
  if (declared.has("risk_score")) context["risk_score"] = input.riskScore;
  optional("session_id", input.sessionId, "session_id", (v) => v);
  optional("client_id", input.clientId, "client_id", (v) => v);
  optional("caller", input.callerSpiffeId, "caller_spiffe_id", (v) => v);
  const attributes = declared.get("attributes");
  if (attributes) {
    context["attributes"] = toCedarRecord(
      input.attributes,
      attributes.type as CedarType & { kind: "Record" },
      "context.attributes",
    );
  } else if (Object.keys(input.attributes).length > 0) {
    const first = Object.keys(input.attributes)[0]!;
    throw invalid(
      `context.attributes.${first}: not declared in the policy schema for action "${actionName}"`,
    );
  }
  return context;
}

function loadSchema(file: BundleFile): CedarSchemaModel {
  const problems = (errors: readonly DetailedError[]): BundleProblem[] =>
    errors.map((error) => locate(file, 1, 0, error));
  const parsed = cedar.checkParseSchema(file.text);
  if (parsed.type === "failure") throw new BundleError(problems(parsed.errors));
  const json = cedar.schemaToJsonWithResolvedTypes(file.text);
  if (json.type === "failure") throw new BundleError(problems(json.errors));
  let model: CedarSchemaModel;
  try {
    model = buildSchemaModel(json.json as Parameters<typeof buildSchemaModel>[0]);
  } catch (error) {
    throw new BundleError([{ file: file.name, message: (error as Error).message }]);
  }
  const found: BundleProblem[] = [];
  const need = (ok: boolean, message: string) => {
    if (!ok) found.push({ file: file.name, message });
  };
  need(
    model.entityTypes.has(ROLE_TYPE),
    `declare entity type ${ROLE_TYPE} (roles), e.g. "entity Role in [Role];"`,
  );
  need(
    model.entityTypes.get(ROLE_TYPE)?.memberOfTypes.includes(ROLE_TYPE) ?? true,
    `entity type ${ROLE_TYPE} must be "in [Role]" so roles can inherit`,
  );
  need(model.entityTypes.has(USER_TYPE), `declare entity type ${USER_TYPE} (user principals)`);
  for (const type of [USER_TYPE, SERVICE_TYPE]) {
    const entity = model.entityTypes.get(type);
    need(
      !entity || entity.memberOfTypes.includes(ROLE_TYPE),
      `entity type ${type} must be "in [${ROLE_TYPE}]"`,
    );
  }
  for (const type of model.entityTypes.keys()) {
    need(
      cedarTypeName(resourceTypeName(type)) === type,
      `entity type ${type} must be UpperCamelCase`,
    );
  }
  for (const [name, action] of model.actions) {
    for (const [field, attribute] of action.context.attributes) {
      const expected = CONTEXT_FIELDS[field];
      const actual =
        attribute.type.kind === "Extension" ? attribute.type.name : attribute.type.kind;
      if (expected === undefined) {
        need(
          false,
          `context of action "${name}" declares "${field}"; the service fills only ${Object.keys(CONTEXT_FIELDS).join(", ")}`,
        );
      } else {
        need(
          actual === expected,
          `context.${field} of action "${name}" must be of type ${expected}`,
        );
      }
    }
  }
  if (found.length > 0) throw new BundleError(found);
  return model;
}

function checkRoleGrants(
  roles: RoleHierarchy,
  schema: CedarSchemaModel,
  fileName: string,
): BundleProblem[] {
  const problems: BundleProblem[] = [];
  for (const role of roles.roles.values()) {
    for (const [resourceType, actions] of role.grants) {
      const type = cedarTypeName(resourceType);
      if (
        !schema.entityTypes.has(type) ||
        resourceTypeName(type) !== resourceType ||
        type === ROLE_TYPE
      ) {
        problems.push({
          file: fileName,
          line: role.line,
          message: `role "${role.name}" grants on unknown resource type "${resourceType}"`,
        });
        continue;
      }
      for (const action of actions) {
        const declared = schema.actions.get(action);
        if (!declared) {
          problems.push({
            file: fileName,
            line: role.line,
            message: `role "${role.name}" grants unknown action "${action}"`,
          });
        } else if (!declared.resourceTypes.includes(type)) {
          problems.push({
            file: fileName,
            line: role.line,
            message: `role "${role.name}" grants "${action}" on "${resourceType}", but the schema does not apply that action to it`,
          });
        }
      }
    }
  }
  return problems;
}

function rolePolicies(roles: RoleHierarchy, fileName: string): PolicySource[] {
  const policies: PolicySource[] = [];
  for (const role of roles.roles.values()) {
    for (const [resourceType, actions] of role.grants) {
      if (actions.length === 0) continue;
      const list = actions.map((a) => `Action::${JSON.stringify(a)}`).join(", ");
      const text = `permit (principal in ${ROLE_TYPE}::${JSON.stringify(role.name)}, action in [${list}], resource is ${cedarTypeName(resourceType)});`;
      const json = cedar.policyToJson(text);
      if (json.type === "failure")
        throw new Error(`generated policy does not parse: ${firstMessage(json.errors)}`);
      policies.push({
        id: `role/${role.name}/${resourceType}`,
        file: fileName,
        line: role.line,
        text,
        effect: "permit",
        json: json.json,
      });
    }
  }
  return policies;
}

function parsePolicyFile(file: BundleFile, problems: BundleProblem[]): PolicySource[] {
  const parsed = cedar.checkParsePolicySet({ staticPolicies: file.text });
  if (parsed.type === "failure") {
    problems.push(...parsed.errors.map((error) => locate(file, 1, 0, error)));
    return [];
  }
  const parts = cedar.policySetTextToParts(file.text);
  if (parts.type === "failure") {
    problems.push(...parts.errors.map((error) => locate(file, 1, 0, error)));
    return [];
  }
  if (parts.policy_templates.length > 0) {
    problems.push({ file: file.name, message: "policy templates are not supported" });
  }
  const sources: PolicySource[] = [];
  let from = 0;
  parts.policies.forEach((text, index) => {
    const offset = file.text.indexOf(text, from);
    from = offset >= 0 ? offset + text.length : from;
    const line = offset >= 0 ? lineAt(file.text, offset) : 1;
    const json = cedar.policyToJson(text);
    if (json.type === "failure") {
      problems.push(...json.errors.map((error) => locate(file, line, 0, error)));
      return;
    }
    const id = json.json.annotations?.["id"] ?? `${file.name}#${index}`;
    sources.push({ id, file: file.name, line, text, effect: json.json.effect, json: json.json });
  });
  return sources;
}

/** Validates every policy against the schema (strict); returns the warnings. */
function validatePolicies(
  schemaFile: BundleFile,
  policies: readonly PolicySource[],
  problems: BundleProblem[],
): string[] {
  const byId = new Map(policies.map((p) => [p.id, p]));
  const answer = cedar.validate({
    validationSettings: { mode: "strict" },
    schema: schemaFile.text,
    policies: { staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])) },
  });
  if (answer.type === "failure") {
    problems.push(...answer.errors.map((error) => locate(schemaFile, 1, 0, error)));
    return [];
  }
  for (const { policyId, error } of answer.validationErrors) {
    const policy = byId.get(policyId);
    if (!policy) problems.push({ file: "(bundle)", message: error.message });
    else problems.push(locatePolicy(policy, error));
  }
  return [
    ...answer.validationWarnings.map(({ policyId, error }) => {
      const policy = byId.get(policyId);
      const problem = policy
        ? locatePolicy(policy, error)
        : { file: "(bundle)", message: error.message };
      return `${problem.file}:${problem.line ?? 1}: ${problem.message}`;
    }),
    ...answer.otherWarnings.map((w) => w.message),
  ];
}

function locatePolicy(policy: PolicySource, error: DetailedError): BundleProblem {
  const start = error.sourceLocations?.[0]?.start;
  const line =
    start === undefined || policy.file === ROLES_FILE
      ? policy.line
      : policy.line + lineAt(policy.text, start) - 1;
  return { file: policy.file, line, message: `policy "${policy.id}": ${withHelp(error)}` };
}

function locate(
  file: BundleFile,
  baseLine: number,
  baseOffset: number,
  error: DetailedError,
): BundleProblem {
  const start = error.sourceLocations?.[0]?.start;
  const line =
    start === undefined ? baseLine : baseLine + lineAt(file.text.slice(baseOffset), start) - 1;
  const label = error.sourceLocations?.[0]?.label;
  return { file: file.name, line, message: withHelp(error) + (label ? ` (${label})` : "") };
}

function withHelp(error: DetailedError): string {
  return error.help ? `${error.message}; ${error.help}` : error.message;
}

function entityOf(value: EntityUidJson | undefined): { type: string; id: string } | undefined {
  if (value === undefined) return undefined;
  return "__entity" in value ? value.__entity : value;
}

/** The role a policy's principal scope names (`principal in Role::"x"`), if any. */
function principalRole(policy: PolicyJson): string | undefined {
  const scope = policy.principal as {
    op: string;
    entity?: EntityUidJson;
    in?: { entity?: EntityUidJson };
  };
  const entity = entityOf(scope.op === "is" ? scope.in?.entity : scope.entity);
  return entity?.type === ROLE_TYPE ? entity.id : undefined;
}

/** The actions of the schema a policy's action scope matches, action groups expanded. */
function matchingActions(policy: PolicyJson, schema: CedarSchemaModel): string[] {
  const scope = policy.action as { op: string; entity?: EntityUidJson; entities?: EntityUidJson[] };
  if (scope.op === "All") return [...schema.actions.keys()];
  const named = (scope.entities ?? [scope.entity])
    .map((e) => entityOf(e)?.id)
    .filter((id) => id !== undefined);
  if (scope.op === "==") return named.filter((id) => schema.actions.has(id));
  const groups = new Set(named);
  const inGroup = (name: string, seen: Set<string>): boolean => {
    if (groups.has(name)) return true;
    if (seen.has(name)) return false;
    seen.add(name);
    return (schema.actions.get(name)?.memberOf ?? []).some((parent) => inGroup(parent, seen));
  };
  return [...schema.actions.keys()].filter((name) => inGroup(name, new Set()));
}

/** Whether any condition reads `context.<name>` (or asks `context has <name>`). */
function readsContextAttribute(conditions: PolicyJson["conditions"], name: string): boolean {
  const visit = (node: unknown): boolean => {
    if (node === null || typeof node !== "object") return false;
    if (Array.isArray(node)) return node.some(visit);
    // The whole context used as a value (`context == {...}`) could depend on anything in it.
    if (isContextVar(node)) return true;
    const record = node as Record<string, unknown>;
    for (const op of [".", "has"]) {
      const access = record[op] as { left?: unknown; attr?: unknown } | undefined;
      if (access && typeof access === "object" && isContextVar(access.left)) {
        const attr = access.attr;
        if (attr === name || (Array.isArray(attr) && attr[0] === name)) return true;
        // `context.<other>`: only that attribute is read.
        return false;
      }
    }
    return Object.values(record).some(visit);
  };
  return conditions.some((clause) => visit(clause.body));
}

function isContextVar(node: unknown): boolean {
  return node !== null && typeof node === "object" && (node as { Var?: unknown }).Var === "context";
}

/** What each role's own permit policies grant, for GetUserPermissions. */
function grantsByRole(
  policies: readonly PolicySource[],
  schema: CedarSchemaModel,
): Map<string, Permission[]> {
  const grants = new Map<string, Map<string, Permission>>();
  for (const policy of policies) {
    if (policy.effect !== "permit") continue;
    const role = principalRole(policy.json);
    if (role === undefined) continue;
    const resource = policy.json.resource as {
      op: string;
      entity_type?: string;
      entity?: EntityUidJson;
      in?: unknown;
    };
    const onlyType =
      resource.op === "is"
        ? resource.entity_type
        : resource.op === "=="
          ? entityOf(resource.entity)?.type
          : undefined;
    const narrowed =
      resource.op === "==" ||
      resource.op === "in" ||
      (resource.op === "is" && resource.in !== undefined);
    const conditional = policy.json.conditions.length > 0 || narrowed;
    const forRole = grants.get(role) ?? new Map<string, Permission>();
    grants.set(role, forRole);
    for (const action of matchingActions(policy.json, schema)) {
      for (const type of schema.actions.get(action)!.resourceTypes) {
        if (onlyType !== undefined && onlyType !== type) continue;
        const permission = { action, resourceType: resourceTypeName(type), conditional };
        const key = `${permission.resourceType}\0${action}`;
        const known = forRole.get(key);
        if (!known || (known.conditional && !conditional)) forRole.set(key, permission);
      }
    }
  }
  return new Map([...grants].map(([role, map]) => [role, [...map.values()]]));
}
