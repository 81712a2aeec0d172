// capstan/cloud: cloud resources through the official SDKs (loaded lazily), every call under a deadline.
export { CloudError, CloudErrorCode } from './errors.ts';
export {
  DELETE_BATCH,
  type DeleteOutcome,
  executeGc,
  type GcRule,
  listAll,
  type ObjectStore,
  planGc,
  type StoredObject,
  type Usage,
  usageOf,
} from './object-store.ts';
export { createS3Store, type S3StoreOptions } from './s3.ts';
