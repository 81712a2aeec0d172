// Numbers as Kubernetes Quantities, the form the External Metrics API carries values in.
import { ScalingError, ScalingErrorCode } from '../errors.ts';

/**
 * A metric value as a Kubernetes Quantity string: integers exactly (`42`, `-3`, `12345678901234567890`),
 * other numbers in thousandths rounded away from zero (`1.5` → `1500m`, `0.0001` → `1m`), so a small
 * non-zero value never reads as zero to an HPA. Throws `CAP_ERR_SCALING_SOURCE` for NaN and infinities: a
 * source that answers those has no usable number.
 */
export function toQuantity(value: number): string {
  if (!Number.isFinite(value)) {
    throw new ScalingError(ScalingErrorCode.source, `a metric value must be a finite number, got ${value}`);
  }
  if (Number.isInteger(value)) return Number.isSafeInteger(value) ? String(value) : BigInt(value).toString();
  const milli = Math.sign(value) * Math.ceil(Math.abs(value) * 1000);
  if (Number.isInteger(milli / 1000) && Number.isSafeInteger(milli / 1000)) return String(milli / 1000);
  return `${Number.isSafeInteger(milli) ? String(milli) : BigInt(milli).toString()}m`;
}
