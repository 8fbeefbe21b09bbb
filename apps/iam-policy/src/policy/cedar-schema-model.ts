/**
 * The parts of a Cedar schema the service needs at run time: the typed shape of every entity
 * type and of each action's context, to turn JSON attributes into typed Cedar values, and which
 * principal and resource types each action applies to.
 *
 * @module
 */

/** A Cedar type with common types resolved. */
export type CedarType =
  | { readonly kind: "String" }
  | { readonly kind: "Long" }
  | { readonly kind: "Boolean" }
  | { readonly kind: "Set"; readonly element: CedarType }
  | { readonly kind: "Record"; readonly attributes: ReadonlyMap<string, CedarAttribute> }
  | { readonly kind: "Entity"; readonly name: string }
  | { readonly kind: "Extension"; readonly name: ExtensionName };

/** Extension types this service can build values of. */
export type ExtensionName = "ipaddr" | "decimal" | "datetime" | "duration";

/** A record attribute. */
export interface CedarAttribute {
  readonly type: CedarType;
  readonly required: boolean;
}

/** An action of the schema. */
export interface CedarAction {
  /** Action groups the action belongs to, directly. */
  readonly memberOf: readonly string[];
  readonly principalTypes: readonly string[];
  readonly resourceTypes: readonly string[];
  /** The context record; an empty record when the action declares none. */
  readonly context: CedarType & { kind: "Record" };
}

/** An entity type of the schema. */
export interface CedarEntityType {
  /** The attributes (an empty record when it has none). */
  readonly shape: CedarType & { kind: "Record" };
  readonly memberOfTypes: readonly string[];
}

/** The schema, resolved. */
export interface CedarSchemaModel {
  /** Entity type name → its shape and the types its entities may be members of. */
  readonly entityTypes: ReadonlyMap<string, CedarEntityType>;
  readonly actions: ReadonlyMap<string, CedarAction>;
}

const EXTENSIONS: readonly string[] = ["ipaddr", "decimal", "datetime", "duration"];
const EMPTY_RECORD: CedarType & { kind: "Record" } = { kind: "Record", attributes: new Map() };

interface RawType {
  type: string;
  name?: string;
  element?: RawType;
  attributes?: Record<string, RawType & { required?: boolean }>;
}

interface RawNamespace {
  commonTypes?: Record<string, RawType>;
  entityTypes: Record<string, { shape?: RawType; memberOfTypes?: string[]; enum?: string[] }>;
  actions: Record<
    string,
    {
      memberOf?: { id: string }[];
      appliesTo?: { principalTypes?: string[]; resourceTypes?: string[]; context?: RawType };
    }
  >;
}

/**
 * Builds the model from the JSON form of a schema (`schemaToJsonWithResolvedTypes`). Throws an
 * `Error` with a plain message when the schema uses something this service does not support
 * (a namespace, an unknown type); the caller turns it into a bundle problem.
 */
export function buildSchemaModel(json: Record<string, RawNamespace>): CedarSchemaModel {
  const names = Object.keys(json);
  if (names.length !== 1 || names[0] !== "") {
    throw new Error(
      "declare every type without a namespace (found namespaces: " +
        names.filter((n) => n).join(", ") +
        ")",
    );
  }
  const ns = json[""]!;
  const common = ns.commonTypes ?? {};
  const resolve = (raw: RawType, seen: readonly string[]): CedarType => {
    switch (raw.type) {
      case "String":
      case "Long":
      case "Boolean":
        return { kind: raw.type };
      case "Set":
        return { kind: "Set", element: resolve(raw.element!, seen) };
      case "Record":
        return {
          kind: "Record",
          attributes: new Map(
            Object.entries(raw.attributes ?? {}).map(([name, attr]) => [
              name,
              { type: resolve(attr, seen), required: attr.required !== false },
            ]),
          ),
        };
      case "Entity":
        return { kind: "Entity", name: raw.name! };
      case "Extension":
        return extension(raw.name!);
      case "EntityOrCommon":
        return named(raw.name!, seen);
      default:
        return named(raw.type, seen);
    }
  };
  const named = (name: string, seen: readonly string[]): CedarType => {
    if (EXTENSIONS.includes(name)) return extension(name);
    if (name in common) {
      if (seen.includes(name)) throw new Error(`common type ${name} refers to itself`);
      return resolve(common[name]!, [...seen, name]);
    }
    if (name in ns.entityTypes) return { kind: "Entity", name };
    if (name === "Bool") return { kind: "Boolean" };
    throw new Error(`unsupported type ${name}`);
  };
  const extension = (name: string): CedarType => {
    if (!EXTENSIONS.includes(name)) throw new Error(`unsupported extension type ${name}`);
    return { kind: "Extension", name: name as ExtensionName };
  };
  const asRecord = (type: CedarType | undefined, what: string): CedarType & { kind: "Record" } => {
    if (type === undefined) return EMPTY_RECORD;
    if (type.kind !== "Record") throw new Error(`${what} must be a record`);
    return type;
  };

  const entityTypes = new Map<string, CedarEntityType>();
  for (const [name, entity] of Object.entries(ns.entityTypes)) {
    entityTypes.set(name, {
      shape: asRecord(entity.shape ? resolve(entity.shape, []) : undefined, `shape of ${name}`),
      memberOfTypes: entity.memberOfTypes ?? [],
    });
  }
  const actions = new Map<string, CedarAction>();
  for (const [name, action] of Object.entries(ns.actions)) {
    const applies = action.appliesTo;
    actions.set(name, {
      memberOf: (action.memberOf ?? []).map((group) => group.id),
      principalTypes: applies?.principalTypes ?? [],
      resourceTypes: applies?.resourceTypes ?? [],
      context: asRecord(
        applies?.context ? resolve(applies.context, []) : undefined,
        `context of action ${name}`,
      ),
    });
  }
  return { entityTypes, actions };
}

/** `purchase_order` → `PurchaseOrder`: the Cedar entity type of a request's resource type. */
export function cedarTypeName(resourceType: string): string {
  return resourceType
    .split("_")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}

/** `PurchaseOrder` → `purchase_order`: the request form of a Cedar entity type. */
export function resourceTypeName(cedarType: string): string {
  return cedarType.replace(/(?<=[a-z0-9])([A-Z])/g, "_$1").toLowerCase();
}
