/** Where the agent's parts report what they do: one line an event, info or warn. */
export interface AgentLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** One JSON object a line, for log pipelines. */
export const consoleLogger: AgentLogger = {
  info: (m) => console.log(JSON.stringify({ level: 'info', time: new Date().toISOString(), msg: m })),
  warn: (m) => console.warn(JSON.stringify({ level: 'warn', time: new Date().toISOString(), msg: m })),
};
