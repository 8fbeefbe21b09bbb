import { isIP } from "node:net";
import type { CedarValueJson } from "@cedar-policy/cedar-wasm/nodejs";
import { ServiceError } from "@authplat/errors";
import type { JsonObject, JsonValue } from "./authorization.ts";
import type { CedarType } from "./cedar-schema-model.ts";

/** Cedar's `datetime` literal forms: a date, or a date and time in UTC or with an offset. */
const DATETIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{3})?(Z|[+-]\d{4}))?$/;
/** Cedar's `duration` literal: units d, h, m, s, ms in that order, optionally negative. */
const DURATION = /^-?(?=\d)(\d+d)?(\d+h)?(\d+m(?!s))?(\d+s)?(\d+ms)?$/;
/** Cedar's `decimal` literal: up to four digits after the point. */
const DECIMAL = /^-?\d+\.\d{1,4}$/;

function invalid(message: string): ServiceError {
  return new ServiceError("INVALID_ARGUMENT", message);
}

function describe(value: JsonValue): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** Whether `value` is an IP address or a CIDR range Cedar's `ip()` accepts. */
export function isIpOrRange(value: string): boolean {
  const slash = value.indexOf("/");
  if (slash === -1) return isIP(value) !== 0;
  const family = isIP(value.slice(0, slash));
  const bits = value.slice(slash + 1);
  return family !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * Turns a JSON attribute value into the typed Cedar value the schema declares at `path`
 * (`resource.attributes.owner`), or throws `INVALID_ARGUMENT` saying what is wrong there.
 * Entity references are given as the entity's ID; extension values as their literal text.
 */
export function toCedarValue(value: JsonValue, type: CedarType, path: string): CedarValueJson {
  switch (type.kind) {
    case "String":
      if (typeof value !== "string")
        throw invalid(`${path}: expected a string, got ${describe(value)}`);
      return value;
    case "Long":
      if (typeof value !== "number" || !Number.isSafeInteger(value)) {
        throw invalid(
          `${path}: expected an integer, got ${typeof value === "number" ? value : describe(value)}`,
        );
      }
      return value;
    case "Boolean":
      if (typeof value !== "boolean")
        throw invalid(`${path}: expected a boolean, got ${describe(value)}`);
      return value;
    case "Set":
      if (!Array.isArray(value)) throw invalid(`${path}: expected a list, got ${describe(value)}`);
      return (value as readonly JsonValue[]).map((item, i) =>
        toCedarValue(item, type.element, `${path}[${i}]`),
      );
    case "Record":
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        throw invalid(`${path}: expected an object, got ${describe(value)}`);
      }
      return toCedarRecord(value as JsonObject, type, path);
    case "Entity":
      if (typeof value !== "string" || value === "") {
        throw invalid(`${path}: expected the ID of a ${type.name} as a non-empty string`);
      }
      return { __entity: { type: type.name, id: value } };
    case "Extension":
      return extensionValue(value, type.name, path);
  }
}

function extensionValue(value: JsonValue, name: string, path: string): CedarValueJson {
  const text = typeof value === "number" && name === "decimal" ? decimalText(value) : value;
  if (typeof text !== "string")
    throw invalid(`${path}: expected a ${name} as a string, got ${describe(value)}`);
  switch (name) {
    case "ipaddr":
      if (!isIpOrRange(text)) throw invalid(`${path}: not an IP address or CIDR range`);
      return { __extn: { fn: "ip", arg: text } };
    case "datetime":
      if (!DATETIME.test(text))
        throw invalid(`${path}: expected a date or RFC 3339 time such as 2026-01-31T12:00:00Z`);
      return { __extn: { fn: "datetime", arg: text } };
    case "duration":
      if (!DURATION.test(text)) throw invalid(`${path}: expected a duration such as 1h30m`);
      return { __extn: { fn: "duration", arg: text } };
    default:
      if (!DECIMAL.test(text))
        throw invalid(`${path}: expected a decimal with 1 to 4 fraction digits`);
      return { __extn: { fn: "decimal", arg: text } };
  }
}

function decimalText(value: number): string | undefined {
  return Number.isFinite(value)
    ? Number.isInteger(value)
      ? `${value}.0`
      : String(value)
    : undefined;
}

/**
 * Turns a JSON object into a Cedar record of the declared `type`: every key must be declared,
 * every required attribute present; `null` counts as absent. Attributes come out in the
 * schema's order, so equal inputs give byte-equal JSON (the decision cache relies on it).
 */
export function toCedarRecord(
  value: JsonObject,
  type: CedarType & { kind: "Record" },
  path: string,
): Record<string, CedarValueJson> {
  for (const key of Object.keys(value)) {
    if (!type.attributes.has(key))
      throw invalid(`${path}.${key}: not declared in the policy schema`);
  }
  const record: Record<string, CedarValueJson> = {};
  for (const [name, attribute] of type.attributes) {
    const item = value[name];
    if (item === undefined || item === null) {
      if (attribute.required) throw invalid(`${path}.${name}: required by the policy schema`);
      continue;
    }
    record[name] = toCedarValue(item, attribute.type, `${path}.${name}`);
  }
  return record;
}
