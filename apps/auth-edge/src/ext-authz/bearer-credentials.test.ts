import { describe, expect, it } from "vitest";
import { parseBearerCredentials } from "./bearer-credentials.ts";

describe("parseBearerCredentials", () => {
  it.each([
    ["Bearer abc.def-ghi_jkl~mno+pq/r==", "abc.def-ghi_jkl~mno+pq/r=="],
    ["bearer abc", "abc"],
    ["BEARER   abc", "abc"],
    ["  Bearer abc  ", "abc"],
  ])("reads the token of %j", (header, token) => {
    expect(parseBearerCredentials(header)).toEqual({ kind: "token", token });
  });

  it.each([
    ["no header", undefined],
    ["an empty header", ""],
    ["another scheme", "Basic dXNlcjpwYXNz"],
    ["a scheme that merely starts with Bearer", "Bearerabc"],
    ["no scheme at all", "(garbage)"],
  ])("finds no bearer credentials in %s", (_case, header) => {
    expect(parseBearerCredentials(header)).toEqual({ kind: "absent" });
  });

  it.each([
    ["the scheme alone", "Bearer"],
    ["the scheme and spaces", "Bearer   "],
    ["two tokens", "Bearer abc def"],
    ["two Authorization headers joined by Envoy", "Bearer abc,Bearer def"],
    ["a quoted token", 'Bearer "abc"'],
    ["padding inside the token", "Bearer ab=c"],
    ["a tab instead of a space", "Bearer\tabc"],
  ])("calls %s malformed", (_case, header) => {
    expect(parseBearerCredentials(header)).toEqual({ kind: "malformed" });
  });
});
