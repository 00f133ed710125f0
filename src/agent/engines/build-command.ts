// `outpost engine build [version]`: builds OpenTofu from its Go module into
// the build directory with the same code an agent uses when it cannot
// download a release (engine-source-build.ts), for machines that should
// have the binary before their first job, and for CI. Progress goes to
// stderr; the binary's path is the last line on stdout, for scripts.
import { ConfigError, loadSettings, type Env } from '../../config/settings.ts';
import { createLogger } from '../../logging/logger.ts';
import { engineBuildEnvironment, engineSettings } from '../engine-config.ts';
import { EngineSourceBuild, GoToolchainMissing, SourceBuildFailed, tofuTarget, type BuildTarget } from './engine-source-build.ts';
import { isValidEngineVersion } from './release-files.ts';

export interface EngineBuildRequest {
  version: string;
  /** Overrides OUTPOST_AGENT_ENGINE_BUILD_DIR. */
  dir?: string | undefined;
  /** Overrides OUTPOST_AGENT_GO. */
  go?: string | undefined;
  /** More packages of the same module to build beside tofu (CI builds OpenTofu's test provider this way). */
  extraTargets?: BuildTarget[];
}

export async function runEngineBuildCommand(request: EngineBuildRequest, env: Env = engineBuildEnvironment()): Promise<number> {
  const fail = (code: number, message: string): number => {
    process.stderr.write(`outpost engine build: ${message}\n`);
    return code;
  };
  if (!isValidEngineVersion(request.version)) return fail(2, `${JSON.stringify(request.version)} is not an OpenTofu release version (such as 1.10.10)`);
  let settings;
  try {
    settings = loadSettings(
      { engineBuildDir: engineSettings.engineBuildDir, goBinary: engineSettings.goBinary },
      { ...env, ...(request.dir ? { OUTPOST_AGENT_ENGINE_BUILD_DIR: request.dir } : {}), ...(request.go ? { OUTPOST_AGENT_GO: request.go } : {}) },
    );
  } catch (error) {
    if (error instanceof ConfigError) return fail(2, error.message);
    throw error;
  }
  const logger = createLogger({ format: 'text', level: 'warn', name: 'outpost' });
  const builder = new EngineSourceBuild({ dir: settings.engineBuildDir, go: { configured: settings.goBinary, searchPath: env.PATH }, logger });
  const note = (line: string) => void process.stderr.write(`${line}\n`);
  const targets = [tofuTarget(request.version), ...(request.extraTargets ?? [])];
  const stop = () => builder.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const existing = await Promise.all(targets.map((target) => builder.findBuilt(request.version, target)));
    if (existing.every((binary) => binary !== undefined)) {
      note(`OpenTofu ${request.version} is already built: ${existing[0]}`);
      process.stdout.write(`${existing[0]}\n`);
      return 0;
    }
    const go = await builder.toolchain();
    note(`Building OpenTofu ${request.version} from its Go module with ${go.version} (${go.path}) into ${builder.dir}.`);
    const binary = await builder.build(request.version, note, targets);
    process.stdout.write(`${binary}\n`);
    return 0;
  } catch (error) {
    if (error instanceof GoToolchainMissing) {
      return fail(1, `${error.message}. Install Go 1.24 or newer (https://go.dev/dl/) and put it on PATH or name it with --go, or download OpenTofu's release instead.`);
    }
    if (error instanceof SourceBuildFailed) return fail(1, error.message);
    throw error;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
