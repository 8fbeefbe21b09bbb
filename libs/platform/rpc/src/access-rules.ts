/**
 * Who may call what, as data. Each service ships `apps/<service>/src/access-rules.json`:
 *
 * ```json
 * {
 *   "$comment": "why the file looks the way it does",
 *   "rules": {
 *     "/auth.token.v1.TokenService/IssueTokenPair": {
 *       "$comment": "the operator must not mint tokens in production",
 *       "production": ["session-identity"],
 *       "development": ["session-identity", "operator"]
 *     }
 *   }
 * }
 * ```
 *
 * Keys of `rules` are full gRPC method paths. Each names its callers for both profiles, as
 * workload names of the trust domain (`session-identity` stands for
 * `spiffe://<TRUST_DOMAIN>/ns/auth/sa/session-identity`) or as full SPIFFE IDs of the trust
 * domain. An empty list means nobody. Nothing else is accepted: no patterns, no wildcards, no
 * unknown keys.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import type { DescService } from "@bufbuild/protobuf";
import {
  CallerAllowlist,
  parseSpiffeId,
  SpiffeError,
  spiffeIdForService,
  type SpiffeId,
} from "@authplat/spiffe";

/** Which column of the rules a process uses: `production` (default) or `development` (`npm start`). */
export type AccessProfile = "production" | "development";

/** The profiles, in the order the files and the README list them. */
export const ACCESS_PROFILES: readonly AccessProfile[] = Object.freeze([
  "production",
  "development",
]);

/** A rules document and where it came from (a path, or a name such as `ALLOWED_CALLERS`), for messages. */
export interface AccessRulesDocument {
  /** Where the document came from; every error message starts with it. */
  readonly file: string;
  /** The parsed JSON. */
  readonly content: unknown;
}

/** One method's callers in a validated document: full SPIFFE IDs, names expanded. */
export type MethodCallers = Readonly<Record<AccessProfile, readonly string[]>>;

/** Thrown when a rules document is invalid; the message names the file and, where there is one, the method. */
export class AccessRulesError extends Error {
  override readonly name = "AccessRulesError";
  /** The document the problem is in. */
  readonly file: string;
  /** The method path the problem is about, when it is about one. */
  readonly method: string | undefined;

  constructor(file: string, method: string | undefined, problem: string, cause?: unknown) {
    super(
      `${file}: ${method === undefined ? "" : `${method}: `}${problem}`,
      cause === undefined ? undefined : { cause },
    );
    this.file = file;
    this.method = method;
  }
}

const PROFILE_KEYS = new Set<string>(ACCESS_PROFILES);
const COMMENT = "$comment";
const SPIFFE_SCHEME = "spiffe://";

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Checks the shape of a rules document and returns its rules with names expanded to full SPIFFE
 * IDs. `knownMethods` are the method paths of the served services; a rule for anything else is
 * an error.
 *
 * @throws {AccessRulesError} on any deviation from the shape in the module documentation.
 */
export function parseAccessRulesDocument(
  document: AccessRulesDocument,
  knownMethods: ReadonlySet<string>,
  trustDomain: string,
): ReadonlyMap<string, MethodCallers> {
  const { file, content } = document;
  if (!isPlainObject(content)) {
    throw new AccessRulesError(file, undefined, 'must be a JSON object with a "rules" object');
  }
  for (const key of Object.keys(content)) {
    if (key !== "rules" && key !== COMMENT) {
      throw new AccessRulesError(
        file,
        undefined,
        `unknown key ${JSON.stringify(key)} (only "rules" and "$comment")`,
      );
    }
  }
  const rules = content["rules"];
  if (!isPlainObject(rules)) {
    throw new AccessRulesError(file, undefined, '"rules" must be an object keyed by method path');
  }
  const parsed = new Map<string, MethodCallers>();
  for (const [method, entry] of Object.entries(rules)) {
    if (!knownMethods.has(method)) {
      throw new AccessRulesError(file, method, "no such method is served here");
    }
    if (!isPlainObject(entry)) {
      throw new AccessRulesError(
        file,
        method,
        'must be an object with "production" and "development" lists',
      );
    }
    for (const key of Object.keys(entry)) {
      if (!PROFILE_KEYS.has(key) && key !== COMMENT) {
        throw new AccessRulesError(
          file,
          method,
          `unknown key ${JSON.stringify(key)} (only "production", "development" and "$comment")`,
        );
      }
    }
    const callers = {} as Record<AccessProfile, readonly string[]>;
    for (const profile of ACCESS_PROFILES) {
      callers[profile] = checkCallers(file, method, profile, entry[profile], trustDomain);
    }
    parsed.set(method, Object.freeze(callers));
  }
  return parsed;
}

function checkCallers(
  file: string,
  method: string,
  profile: AccessProfile,
  list: unknown,
  trustDomain: string,
): readonly string[] {
  if (!Array.isArray(list)) {
    throw new AccessRulesError(
      file,
      method,
      `"${profile}" must be a list of workload names or SPIFFE IDs (empty: nobody)`,
    );
  }
  const seen = new Set<string>();
  list.forEach((entry: unknown, index) => {
    const where = `${profile}[${index}]`;
    const id = expandCaller(file, method, where, entry, trustDomain).toString();
    if (seen.has(id)) throw new AccessRulesError(file, method, `${where}: ${id} is listed twice`);
    seen.add(id);
  });
  return Object.freeze([...seen]);
}

function expandCaller(
  file: string,
  method: string,
  where: string,
  entry: unknown,
  trustDomain: string,
): SpiffeId {
  if (typeof entry !== "string") {
    throw new AccessRulesError(file, method, `${where}: must be a string`);
  }
  let id: SpiffeId;
  try {
    id = entry.startsWith(SPIFFE_SCHEME)
      ? parseSpiffeId(entry)
      : spiffeIdForService(trustDomain, entry);
  } catch (error) {
    if (!(error instanceof SpiffeError)) throw error;
    throw new AccessRulesError(
      file,
      method,
      `${where}: ${JSON.stringify(entry)} is neither a workload name nor a SPIFFE ID (${error.message})`,
      error,
    );
  }
  if (id.trustDomain !== trustDomain) {
    throw new AccessRulesError(
      file,
      method,
      `${where}: ${id} is not in trust domain ${trustDomain}`,
    );
  }
  // X509-SVID §5.2: a leaf SVID always has a path, so a bare trust domain ID could never match.
  if (id.path === "") {
    throw new AccessRulesError(file, method, `${where}: ${id} has no path and can never match`);
  }
  return id;
}

/** The gRPC paths of every method of `services`. */
function methodPathsOf(services: readonly DescService[]): string[] {
  return services.flatMap((service) =>
    service.methods.map((method) => `/${service.typeName}/${method.name}`),
  );
}

/** Options of {@link loadAccessRules}. */
export interface LoadAccessRulesOptions {
  /** The service's own rules file: must have a rule for every method of `services`. */
  readonly rules: AccessRulesDocument;
  /** The services the process serves. */
  readonly services: readonly DescService[];
  /** Names expand to `spiffe://<trustDomain>/ns/auth/sa/<name>`; full IDs must be in it. */
  readonly trustDomain: string;
  /** The column to use. */
  readonly profile: AccessProfile;
  /**
   * Documents of the same shape applied in order after `rules`: each replaces the callers of the
   * methods it names (in the selected profile; it must still give both), and leaves the others.
   */
  readonly overrides?: readonly AccessRulesDocument[];
}

/**
 * The validated, expanded rules of one process in one profile. Answers {@link isAllowed} from
 * precomputed sets: one map lookup and one set lookup per call.
 */
export class AccessRules {
  /** The profile the rules were selected for. */
  readonly profile: AccessProfile;
  readonly #allowlist: CallerAllowlist;
  readonly #callers: ReadonlyMap<string, readonly string[]>;

  /** @internal Use {@link loadAccessRules}. */
  constructor(profile: AccessProfile, callers: ReadonlyMap<string, readonly string[]>) {
    this.profile = profile;
    this.#callers = callers;
    this.#allowlist = new CallerAllowlist(Object.fromEntries(callers));
  }

  /**
   * True only when `caller` is one of the SPIFFE IDs listed for `path` (exact match). False for an
   * unknown path, a missing caller, or anything that is not a validated `SpiffeId`.
   */
  isAllowed(path: string, caller: SpiffeId | undefined): boolean {
    return this.#allowlist.isAllowed(path, caller);
  }

  /** The full SPIFFE IDs allowed to call `path` (empty for an unknown path), for logs and tests. */
  callersOf(path: string): readonly string[] {
    return this.#callers.get(path) ?? [];
  }

  /** Every method path with a rule. */
  methods(): readonly string[] {
    return [...this.#callers.keys()];
  }
}

/**
 * Validates the service's rules file and the overrides, selects `profile`, expands names with
 * the trust domain and returns the rules to hand to the server as `accessRules`.
 *
 * @throws {AccessRulesError} naming the document and the method: a served method without a rule
 *   (in `rules`), a rule for a method that is not served, a caller that is not a workload name or
 *   a SPIFFE ID of the trust domain, a duplicate, an unknown key, a missing profile list.
 */
export function loadAccessRules(options: LoadAccessRulesOptions): AccessRules {
  const methods = methodPathsOf(options.services);
  const known = new Set(methods);
  const base = parseAccessRulesDocument(options.rules, known, options.trustDomain);
  for (const method of methods) {
    if (!base.has(method)) {
      throw new AccessRulesError(
        options.rules.file,
        method,
        "has no rule (every method needs one)",
      );
    }
  }
  const selected = new Map<string, readonly string[]>();
  const take = (document: ReadonlyMap<string, MethodCallers>) => {
    for (const [method, callers] of document) selected.set(method, callers[options.profile]);
  };
  take(base);
  for (const override of options.overrides ?? []) {
    take(parseAccessRulesDocument(override, known, options.trustDomain));
  }
  return new AccessRules(options.profile, selected);
}

/**
 * Reads and parses a rules file (the deployment override named by `ACCESS_RULES_FILE`).
 *
 * @throws {AccessRulesError} naming the file when it cannot be read or is not JSON.
 */
export function readAccessRulesFile(file: string): AccessRulesDocument {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new AccessRulesError(file, undefined, "cannot be read", error);
  }
  try {
    return { file, content: JSON.parse(text) as unknown };
  } catch (error) {
    throw new AccessRulesError(file, undefined, "is not valid JSON", error);
  }
}

/** The settings {@link loadServiceAccessRules} reads (see `serviceEnv` in `@authplat/config`). */
export interface AccessRulesSettings {
  readonly TRUST_DOMAIN: string;
  readonly ACCESS_PROFILE: AccessProfile;
  readonly ACCESS_RULES_FILE?: string | undefined;
}

/**
 * What a `main.ts` calls: the service's own rules, then `extraOverrides` (auth-edge's
 * `ALLOWED_CALLERS`), then the deployment's `ACCESS_RULES_FILE` when set, in `ACCESS_PROFILE`.
 * Synchronous, so a service never starts serving before its rules are known.
 *
 * @throws {AccessRulesError} as {@link loadAccessRules} and {@link readAccessRulesFile}.
 */
export function loadServiceAccessRules(
  settings: AccessRulesSettings,
  options: {
    readonly rules: AccessRulesDocument;
    readonly services: readonly DescService[];
    readonly extraOverrides?: readonly AccessRulesDocument[];
  },
): AccessRules {
  return loadAccessRules({
    rules: options.rules,
    services: options.services,
    trustDomain: settings.TRUST_DOMAIN,
    profile: settings.ACCESS_PROFILE,
    overrides: [
      ...(options.extraOverrides ?? []),
      ...(settings.ACCESS_RULES_FILE === undefined
        ? []
        : [readAccessRulesFile(settings.ACCESS_RULES_FILE)]),
    ],
  });
}

/**
 * An override document giving `callers` (names or SPIFFE IDs) every method of `services` in both
 * profiles, such as auth-edge's `ALLOWED_CALLERS`. `file` names its origin in error messages.
 */
export function everyMethodOverride(
  file: string,
  services: readonly DescService[],
  callers: readonly string[],
): AccessRulesDocument {
  const entry = { production: [...callers], development: [...callers] };
  return {
    file,
    content: { rules: Object.fromEntries(methodPathsOf(services).map((path) => [path, entry])) },
  };
}

/**
 * Rules given directly as method path → full SPIFFE IDs, for tests that start a server with a
 * known set of clients (services load their rules files). Validated like a rules file's IDs.
 *
 * @throws {SpiffeError} when a path or an ID is invalid (see `CallerAllowlist`).
 */
export function staticAccessRules(
  callers: Readonly<Record<string, readonly string[]>>,
): AccessRules {
  return new AccessRules(
    "development",
    new Map(
      Object.entries(callers).map(([method, ids]) => [
        method,
        ids.map((id) => parseSpiffeId(id).toString()),
      ]),
    ),
  );
}

/** {@link staticAccessRules} letting `callers` (full SPIFFE IDs) call every method of `services`. */
export function sameCallersForEveryMethod(
  services: readonly DescService[],
  callers: readonly string[],
): AccessRules {
  return staticAccessRules(Object.fromEntries(methodPathsOf(services).map((m) => [m, callers])));
}
