/** Where the Linux dataplane's drivers report what the agent's operator should see. */
export interface DataplaneLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** One JSON object per line, as the rest of the agent logs. */
export const consoleLogger: DataplaneLogger = {
  info: (m) => console.log(JSON.stringify({ level: 'info', time: new Date().toISOString(), component: 'dataplane', msg: m })),
  warn: (m) => console.warn(JSON.stringify({ level: 'warn', time: new Date().toISOString(), component: 'dataplane', msg: m })),
};
