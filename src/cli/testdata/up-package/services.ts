// Services of the fixture package's areas: each start answers with one URL naming the service.
import type { UpService } from '../../../runtime/index.ts';

/** A service that only reports a URL. */
export function fakeService(name: string): UpService {
  return {
    name,
    description: `fixture ${name}`,
    async start({ host }) {
      return { urls: { home: `http://${host}/${name}` } };
    },
  };
}
