// capstan/exporters: Prometheus exporters built on the runtime, ready to run or to copy.
import type { UpService } from '../runtime/index.ts';
import { hostExporterUpService } from './host-exporter.ts';

export {
  createHostExporter,
  type HostExporterConfig,
  type HostExporterOptions,
  hostExporterConfig,
  hostExporterUpService,
} from './host-exporter.ts';

/** The services this area runs in `capstan up`, in order. */
export const upServices: readonly UpService[] = [hostExporterUpService];
