// The Envoy API types the control plane speaks, from one of two places: the binary descriptor set that
// `npm run build` writes beside the built module (`dist/traffic/xds/envoy-descriptors.bin`, so an install from
// npm needs no .proto file and no devDependency), or, from source (tests, `--conditions=capstan-source`),
// the .proto files that the peer `@grpc/grpc-js-xds` ships. Nothing of Envoy's is committed here.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  loadFileDescriptorSetFromBuffer,
  loadSync,
  type MessageTypeDefinition,
  type Options,
  type PackageDefinition,
} from '@grpc/proto-loader';
import { TrafficError, TrafficErrorCode } from '../errors.ts';

/** The .proto files whose types (and everything they import) the control plane needs. */
export const ENVOY_PROTO_FILES: readonly string[] = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
];

/** The file `npm run build` writes next to this module once compiled. */
export const DESCRIPTOR_FILE = 'envoy-descriptors.bin';

/**
 * How messages look in JavaScript: field names as in the .proto (`version_info`), 64-bit integers and
 * enums as strings, oneofs named, and `google.protobuf.Any` as `{ '@type': url, ...fields }`.
 */
const LOAD_OPTIONS: Options = { keepCase: true, longs: String, enums: String, oneofs: true, json: true };

/** Include folders of the .proto files inside the `@grpc/grpc-js-xds` package. */
function peerIncludeDirs(): string[] {
  const require = createRequire(import.meta.url);
  let root: string;
  try {
    root = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  } catch (err) {
    throw new TrafficError(
      TrafficErrorCode.xdsProtos,
      `the xDS control plane needs the Envoy API types: neither ${DESCRIPTOR_FILE} (written by \`npm run build\`) ` +
        'nor the @grpc/grpc-js-xds package (its .proto files) was found',
      { cause: err },
    );
  }
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(root, 'deps', d));
}

/** Load the Envoy types from the peer's .proto files. */
export function loadPeerProtos(): PackageDefinition {
  return loadSync([...ENVOY_PROTO_FILES], { ...LOAD_OPTIONS, includeDirs: peerIncludeDirs() });
}

/**
 * The Envoy types as a `FileDescriptorSet` (what `protoc --descriptor_set_out` writes), from the peer's
 * .proto files: what the build ships. Each FileDescriptorProto is field 1 of the set, length-delimited.
 */
export function envoyDescriptorSet(): Buffer {
  const definition = loadPeerProtos();
  const anyMessage = definition['envoy.service.discovery.v3.DiscoveryRequest'] as MessageTypeDefinition<
    object,
    object
  >;
  const parts: Buffer[] = [];
  for (const file of anyMessage.fileDescriptorProtos) {
    const length: number[] = [];
    let n = file.length;
    while (n > 0x7f) {
      length.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    length.push(n);
    parts.push(Buffer.from([0x0a, ...length]), file);
  }
  return Buffer.concat(parts);
}

let loaded: PackageDefinition | undefined;

/**
 * The Envoy types, loaded once per process (about half a second): the built descriptor set when present,
 * else the peer's .proto files. Throws {@link TrafficErrorCode.xdsProtos} when neither is there.
 */
export function envoyTypes(): PackageDefinition {
  if (loaded) return loaded;
  const built = join(dirname(fileURLToPath(import.meta.url)), DESCRIPTOR_FILE);
  loaded = existsSync(built)
    ? loadFileDescriptorSetFromBuffer(readFileSync(built), LOAD_OPTIONS)
    : loadPeerProtos();
  return loaded;
}

/** One message type of {@link envoyTypes}, by full name (`envoy.config.listener.v3.Listener`). */
export function messageType(name: string): MessageTypeDefinition<object, Record<string, unknown>> {
  const type = envoyTypes()[name] as MessageTypeDefinition<object, Record<string, unknown>> | undefined;
  if (type?.format !== 'Protocol Buffer 3 DescriptorProto') {
    throw new TrafficError(TrafficErrorCode.xdsProtos, `no message type ${name} among the Envoy types`);
  }
  return type;
}
