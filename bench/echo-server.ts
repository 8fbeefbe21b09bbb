/**
 * A bare grpc-js server with one echo method over the same mutual TLS the services use, and no
 * platform code in the call path: the transport baseline of the benchmark. Prints its port as
 * a JSON line, stops on SIGTERM.
 *
 * Usage: node bench/echo-server.ts <cert.pem> <key.pem> <bundle.pem>
 *
 * @module
 */
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";

const [certFile, keyFile, bundleFile] = process.argv.slice(2);
if (!certFile || !keyFile || !bundleFile) {
  console.error("usage: node bench/echo-server.ts <cert.pem> <key.pem> <bundle.pem>");
  process.exit(2);
}
const server = new grpc.Server();
const identity = (value: Buffer) => value;
server.addService(
  {
    Echo: {
      path: "/bench.Echo/Echo",
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
      callback(null, call.request),
  },
);
const credentials = grpc.ServerCredentials.createSsl(
  readFileSync(bundleFile),
  [{ cert_chain: readFileSync(certFile), private_key: readFileSync(keyFile) }],
  true,
);
server.bindAsync("127.0.0.1:0", credentials, (error, port) => {
  if (error) {
    console.error(error.message);
    process.exit(1);
  }
  console.log(JSON.stringify({ msg: "serving", port, spiffeId: "bench" }));
});
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
