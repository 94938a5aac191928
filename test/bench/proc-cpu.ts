import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** CPU time a process has used, read from the kernel: the benchmark's load generator shares the cores. */
export interface CpuMeter {
  /** Seconds of CPU (user + system) used so far. */
  read(): number;
}

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (proc(5)); 100 on nearly every Linux. */
export function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

interface Stat {
  readonly ppid: number;
  /** utime + stime */
  readonly ticks: number;
  /** cutime + cstime: what its exited, waited-for children used */
  readonly childTicks: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone
  }
  // proc(5): "pid (comm) state ppid ... utime stime ...": comm may hold spaces and parentheses,
  // so count fields from the last ')'. There, [0] is field 3 (state), [1] ppid, [11] utime,
  // [12] stime, [13] cutime, [14] cstime.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    ppid: Number(fields[1]),
    ticks: Number(fields[11]) + Number(fields[12]),
    childTicks: Number(fields[13]) + Number(fields[14]),
  };
}

/** CPU of one process. */
export function processCpu(pid: number, hz = clockTicksPerSecond()): CpuMeter {
  return {
    read() {
      const stat = readStat(pid);
      if (!stat) throw new Error(`process ${pid} is gone: cannot read its CPU time`);
      return stat.ticks / hz;
    },
  };
}

/**
 * CPU of a process and all its children: PostgreSQL's postmaster and its backends. Live
 * children are read one by one; a backend that exited is in the postmaster's cutime/cstime
 * once reaped. (A grandchild's time is not counted: postgres backends fork nothing.)
 */
export function processTreeCpu(rootPid: number, hz = clockTicksPerSecond()): CpuMeter {
  return {
    read() {
      const root = readStat(rootPid);
      if (!root) throw new Error(`process ${rootPid} is gone: cannot read its CPU time`);
      let ticks = root.ticks + root.childTicks;
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const stat = readStat(Number(entry));
        if (stat?.ppid === rootPid) ticks += stat.ticks;
      }
      return ticks / hz;
    },
  };
}
