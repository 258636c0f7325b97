/** Where a part of either process reports what it does: one line an event, info or warn. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

/** One JSON object a line (`level`, `time`, `component` when given, `msg`), for log pipelines. */
export function jsonLogger(component?: string): Logger {
  const line = (level: 'info' | 'warn', msg: string) => JSON.stringify({ level, time: new Date().toISOString(), ...(component ? { component } : {}), msg });
  return {
    info: (m) => console.log(line('info', m)),
    warn: (m) => console.warn(line('warn', m)),
  };
}
