// capstan/scaling: scale any resource through its Scale subresource, and autoscale it on a metric
// (RabbitMQ queue depth, a Prometheus query) with the HPA's formula.

export { ScalingError, ScalingErrorCode } from './errors.ts';
