// capstan/scaling: scale any resource through its Scale subresource, and autoscale it on a metric
// (RabbitMQ queue depth, a Prometheus query) with the HPA's formula.

export { ScalingError, ScalingErrorCode } from './errors.ts';
export { type ResolvedResource, resolveResource } from './resolve.ts';
export {
  checkReplicas,
  parseTargetRef,
  readScale,
  type ScaleCallOptions,
  type ScaleResourceOptions,
  type ScaleResult,
  type ScaleState,
  ScaleTarget,
  type ScaleTargetRef,
  scaleResource,
  scaleTarget,
} from './scale.ts';
