// capstan/testing: start real peers (control plane, databases, Prometheus, dockerd) for tests.
export { freePort } from './internal/ports.ts';
export { type PeerProcess, type PeerProcessOptions, startPeerProcess } from './internal/process.ts';
export { cacheRoot, ensurePeers, peerBinary, peerCacheDir, peerCatalogue, peerStatus } from './peers.ts';
