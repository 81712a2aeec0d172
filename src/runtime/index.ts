// capstan/runtime: the service runtime every Capstan server shares.
export { CapstanError, PeerError } from './errors.ts';
