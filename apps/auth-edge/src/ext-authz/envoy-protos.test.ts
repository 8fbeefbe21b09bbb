import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CHECK_METHOD_PATH, loadEnvoyAuthorizationProtos } from "./envoy-protos.ts";

describe("loadEnvoyAuthorizationProtos", () => {
  const { service } = loadEnvoyAuthorizationProtos();

  it("yields Envoy's Authorization service with its Check method", () => {
    const check = service.methods[0]!;
    expect(service.methods).toHaveLength(1);
    expect(`/${service.typeName}/${check.name}`).toBe(CHECK_METHOD_PATH);
    expect(check.methodKind).toBe("unary");
    expect(check.input.typeName).toBe("envoy.service.auth.v3.CheckRequest");
    expect(check.output.typeName).toBe("envoy.service.auth.v3.CheckResponse");
  });

  it("round-trips the maps and oneofs the check relies on", () => {
    const check = service.methods[0]!;
    const request = create(check.input, {
      attributes: {
        request: { http: { headers: { authorization: "Bearer x" }, path: "/a" } },
        contextExtensions: { "authplat.action": "read" },
      },
    } as never);
    const decoded = fromBinary(check.input, toBinary(check.input, request)) as unknown as {
      attributes: {
        request: { http: { headers: Record<string, string> } };
        contextExtensions: Record<string, string>;
      };
    };
    expect(decoded.attributes.request.http.headers).toEqual({ authorization: "Bearer x" });
    expect(decoded.attributes.contextExtensions).toEqual({ "authplat.action": "read" });
    const response = create(check.output, {
      status: { code: 16 },
      httpResponse: { case: "deniedResponse", value: { status: { code: 401 } } },
    } as never);
    expect(fromBinary(check.output, toBinary(check.output, response))).toMatchObject({
      status: { code: 16 },
      httpResponse: { case: "deniedResponse", value: { status: { code: 401 } } },
    });
  });

  it("fails, naming the file, when the protos are not where it looks", () => {
    expect(() => loadEnvoyAuthorizationProtos(["/nonexistent"])).toThrow(/external_auth\.proto/);
  });
});
