// The xDS control plane in `capstan up`: run from the mesh file named by CAPSTAN_XDS_CONFIG, on `up`'s host
// and lifecycle. Without the variable there is no mesh to serve, so nothing starts.
import type { UpService, UpStarted } from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { runControlPlane } from './run.ts';

/** The environment variable naming the mesh file of the xDS control plane under `capstan up`. */
export const XDS_CONFIG_ENV = 'CAPSTAN_XDS_CONFIG';

/** `capstan up`'s xDS control plane (see {@link XDS_CONFIG_ENV}). */
export const controlPlaneUpService: UpService = {
  name: 'xds',
  description: `xDS control plane from the mesh file in ${XDS_CONFIG_ENV} (not started when unset); SIGHUP or a change of the file pushes a new snapshot`,
  async start({ host, lifecycle, logger, env }): Promise<UpStarted> {
    const file = env[XDS_CONFIG_ENV];
    if (!file) return { urls: {} };
    try {
      const { controlPlane } = await runControlPlane({
        configFile: file,
        listenHost: host,
        lifecycle,
        logger: logger.child({ component: 'xds' }),
      });
      return { urls: { xds: `grpc://${controlPlane.address}`, metrics: `${controlPlane.adminUrl}/metrics` } };
    } catch (err) {
      if (err instanceof TrafficError && err.code === TrafficErrorCode.config) throw err;
      throw new TrafficError(
        TrafficErrorCode.config,
        `${XDS_CONFIG_ENV}=${file}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  },
};
