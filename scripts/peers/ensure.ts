// Installs the peers Capstan is tested against, reusing ~/.cache/capstan.
// Usage: node scripts/peers/ensure.ts --suite | <peer>...
import { ensurePeers, peerCatalogue } from '../../src/peers/index.ts';

const args = process.argv.slice(2);
const names = args.includes('--suite') ? peerCatalogue().suite : args.filter((a) => !a.startsWith('-'));
if (names.length === 0) {
  console.error('usage: node scripts/peers/ensure.ts --suite | <peer>...');
  process.exit(2);
}
const started = Date.now();
try {
  ensurePeers(names, (line) => console.error(`[peers] ${line}`));
  console.error(`[peers] ready: ${names.join(', ')} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
} catch (err) {
  console.error(`[peers] FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
