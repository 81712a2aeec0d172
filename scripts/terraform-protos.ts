// Build step (npm run build): the tfplugin6 protocol as a JSON descriptor in dist/, so the published
// package loads it without Go or the network (src/terraform/protocol/protos.ts reads it back).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import {
  TFPLUGIN_GO_MODULE,
  TFPLUGIN_GO_VERSION,
  TFPLUGIN6_DESCRIPTOR,
  tfplugin6ProtoPath,
} from '../src/terraform/protocol/protos.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'terraform', 'protocol', TFPLUGIN6_DESCRIPTOR);
// protobufjs resolves google/protobuf/timestamp.proto from its bundled well-known types.
const definition = new protobuf.Root().loadSync(tfplugin6ProtoPath(), { keepCase: true });
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(definition.toJSON()));
console.error(`[build] ${TFPLUGIN_GO_MODULE}@${TFPLUGIN_GO_VERSION} tfplugin6 -> ${out}`);
