// The load balancer in `capstan up`: run from the file named by CAPSTAN_LB_CONFIG, on `up`'s host and
// lifecycle. Without the variable there is nothing to balance, so nothing starts.
import type { UpService } from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { runLoadBalancer } from './run.ts';

/** The environment variable naming the load balancer's configuration file under `capstan up`. */
export const LB_CONFIG_ENV = 'CAPSTAN_LB_CONFIG';

/** `capstan up`'s load balancer (see {@link LB_CONFIG_ENV}). */
export const loadBalancerUpService: UpService = {
  name: 'lb',
  description: `load balancer from the file in ${LB_CONFIG_ENV} (not started when unset); SIGHUP or a change of the file reloads it`,
  async start({ host, lifecycle, logger, env }) {
    const file = env[LB_CONFIG_ENV];
    if (!file) return { urls: {} };
    try {
      const { lb } = await runLoadBalancer({
        configFile: file,
        listenHost: host,
        lifecycle,
        logger: logger.child({ component: 'lb' }),
      });
      return {
        urls: {
          proxy: lb.url,
          ...(lb.admin ? { metrics: `${lb.admin.url}/metrics` } : { metrics: `${lb.url}/metrics` }),
        },
      };
    } catch (err) {
      if (err instanceof TrafficError && err.code === TrafficErrorCode.config) throw err;
      throw new TrafficError(TrafficErrorCode.config, `${LB_CONFIG_ENV}=${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  },
};
