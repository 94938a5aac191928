import fs from 'node:fs';
import path from 'node:path';

import { PosternError } from '../shared/errors.ts';

export interface DataDirLock {
  release(): void;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The embedded database is one process's files: a second process opening them would corrupt
 * them. A pid file marks the owner; a file left by a process that is gone is taken over.
 */
export function lockDataDir(dataDir: string, purpose: string): DataDirLock {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, 'postern.lock');
  const content = JSON.stringify({ pid: process.pid, purpose, since: new Date().toISOString() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, content, { flag: 'wx', mode: 0o600 });
      return { release: () => fs.rmSync(file, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readHolder(file);
    if (holder && holder.pid !== process.pid && isRunning(holder.pid)) {
      throw new PosternError(
        'ERR_DATA_DIR_LOCKED',
        `the embedded database in ${dataDir} is in use by another Postern process (pid ${holder.pid}, ${holder.purpose}); stop it first, or set DATABASE_URL`,
      );
    }
    fs.rmSync(file, { force: true });
  }
  throw new PosternError('ERR_DATA_DIR_LOCKED', `could not lock the embedded database in ${dataDir}`);
}

function readHolder(file: string): { pid: number; purpose: string } | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { pid?: unknown; purpose?: unknown };
    return typeof parsed.pid === 'number' ? { pid: parsed.pid, purpose: String(parsed.purpose ?? '') } : undefined;
  } catch {
    return undefined;
  }
}
