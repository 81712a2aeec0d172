// The one place the tfplugin6 protocol definition comes from. Nothing of HashiCorp's is committed: in a
// checkout (source mode, tests) the .proto is read from the Go module cache, fetched with `go mod download`
// on first use; `npm run build` (scripts/terraform-protos.ts) turns it into a JSON descriptor beside the
// compiled module in dist/, so the published package needs neither Go nor the network.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromJSON, loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { TerraformError, TerraformErrorCode } from '../errors.ts';

/** The Go module whose tfplugin6.proto this server implements. */
export const TFPLUGIN_GO_MODULE = 'github.com/hashicorp/terraform-plugin-go';
/** Its pinned release. */
export const TFPLUGIN_GO_VERSION = 'v0.31.0';
/** Where the proto sits inside that module. */
export const TFPLUGIN6_PROTO = 'tfprotov6/internal/tfplugin6/tfplugin6.proto';
/** File name of the built descriptor, beside this module in dist/. */
export const TFPLUGIN6_DESCRIPTOR = 'tfplugin6.json';

/** proto-loader options, the same for the .proto and the JSON descriptor (field names as in the proto). */
export const protoOptions: Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/**
 * Path of tfplugin6.proto in the Go module cache, downloading the pinned module when it is missing
 * (`go mod download` reuses the cache: ~70 ms when present).
 */
export function tfplugin6ProtoPath(): string {
  let out: string;
  try {
    out = execFileSync('go', ['mod', 'download', '-json', `${TFPLUGIN_GO_MODULE}@${TFPLUGIN_GO_VERSION}`], {
      cwd: tmpdir(), // outside any go.mod of ours, so no replace or vendor directive applies
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300_000,
    });
  } catch (err) {
    throw new TerraformError(
      TerraformErrorCode.protocolUnavailable,
      `cannot fetch ${TFPLUGIN_GO_MODULE}@${TFPLUGIN_GO_VERSION} with go (needed in a source checkout; ` +
        `a built package carries ${TFPLUGIN6_DESCRIPTOR}): ${(err as Error).message}`,
      { cause: err },
    );
  }
  const dir = (JSON.parse(out) as { Dir?: string }).Dir;
  const file = dir ? join(dir, TFPLUGIN6_PROTO) : '';
  if (!existsSync(file)) {
    throw new TerraformError(
      TerraformErrorCode.protocolUnavailable,
      `no ${TFPLUGIN6_PROTO} in ${dir ?? out}`,
    );
  }
  return file;
}

let loaded: PackageDefinition | undefined;

/** The tfplugin6 package definition: the built descriptor when there is one, else the .proto from the Go cache. */
export function loadTfplugin6(): PackageDefinition {
  if (loaded) return loaded;
  const built = fileURLToPath(new URL(`./${TFPLUGIN6_DESCRIPTOR}`, import.meta.url));
  loaded = existsSync(built)
    ? fromJSON(JSON.parse(readFileSync(built, 'utf8')), protoOptions)
    : loadSync(tfplugin6ProtoPath(), protoOptions);
  return loaded;
}
