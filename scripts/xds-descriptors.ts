// `npm run build` runs this after tsc: writes the Envoy API types the xDS control plane needs as a binary
// FileDescriptorSet to dist/traffic/xds/envoy-descriptors.bin, read from the .proto files of the peer
// @grpc/grpc-js-xds (a devDependency). The built package then loads its types from that file and needs
// neither the peer nor any .proto file; the source tree (tests, --conditions=capstan-source) reads the
// .proto files directly. The output is a build product: it is not committed (dist/ is ignored).
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DESCRIPTOR_FILE, envoyDescriptorSet } from '../src/traffic/xds/protos.ts';

const out = fileURLToPath(new URL(`../dist/traffic/xds/${DESCRIPTOR_FILE}`, import.meta.url));
mkdirSync(fileURLToPath(new URL('../dist/traffic/xds/', import.meta.url)), { recursive: true });
const set = envoyDescriptorSet();
writeFileSync(out, set);
process.stdout.write(`xds: wrote ${set.length} bytes of Envoy descriptors to ${out}\n`);
