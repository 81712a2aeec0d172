// capstan/helm: Helm plugins in TypeScript (commands, downloaders, Helm's environment), and Capstan's own
// plugin: chart lint against the cluster, encrypted values files, s3:// chart repositories.

export {
  type AddChartOptions,
  addChartToIndex,
  type ChartIndex,
  type ChartMetadata,
  compareVersions,
  formatChartIndex,
  type PushChartOptions,
  type PushedChart,
  parseChartIndex,
  pushChart,
  readChartArchive,
} from './chart-index.ts';
export { type HelmEnv, helmEnv, helmTargetFlags } from './env.ts';
export { HelmError, HelmErrorCode } from './errors.ts';
export {
  capstanHelmPlugin,
  defaultPluginDir,
  type InstalledHelmPlugin,
  type InstallHelmPluginOptions,
  installHelmPlugin,
} from './install.ts';
export {
  formatLintProblem,
  type LintOptions,
  type LintProblem,
  type LintReport,
  lintChart,
  parseRendered,
  type RenderedManifest,
  type RenderOptions,
  renderChart,
} from './lint.ts';
export {
  DOWNLOAD_COMMAND,
  type DownloadRequest,
  defineDownloader,
  defineHelmPlugin,
  exportedHelmPlugins,
  type HelmDownloader,
  type HelmPlugin,
  type HelmPluginCommand,
  type HelmPluginContext,
  type HelmPluginDefinition,
  type HelmPluginIo,
  type HelmPluginMetadata,
  helmPluginManifest,
  helmPluginMetadata,
  isHelmPlugin,
  launcherScript,
  runDownloader,
  runHelmPlugin,
  runHelmPluginMain,
  type WriteHelmPluginDirOptions,
  writeHelmPluginDir,
} from './plugin.ts';
export {
  ChartBucket,
  parseS3Url,
  type S3Location,
  type S3Object,
  type S3Settings,
  s3Downloader,
  s3Key,
  s3SettingsFromEnv,
} from './s3.ts';
export {
  decryptSecrets,
  type EncryptSecretsOptions,
  encryptSecrets,
  generateSecretsKey,
  isEncryptedSecrets,
  loadSecretsKey,
  parseSecretsKey,
  SECRETS_KEY_ENV,
  SECRETS_KEY_FILE_ENV,
  SECRETS_METADATA_KEY,
  type SecretsKey,
  type SecretsMode,
} from './secrets.ts';
export {
  type DecryptedArgs,
  decryptedValuesArgs,
  type EditSecretsOptions,
  editSecrets,
  type HelmRun,
  memoryDir,
  type RunHelmWithSecretsOptions,
  runHelmWithSecrets,
  type SpawnHelmOptions,
  spawnHelm,
  ValuePipes,
  valuesArgs,
} from './secrets-run.ts';
