#!/usr/bin/env node
import { Command } from 'commander';
import { flagOfField } from './command-kit';
import { bashCompletion } from './completion';
import { CliError, EXIT_CODE_TEXT, ExitCode } from './exit-codes';
import { auditCommand } from './commands/audit';
import { hostsCommand } from './commands/hosts';
import { migrationsCommand } from './commands/migrations';
import { mirrorSessionsCommand } from './commands/mirror-sessions';
import { portsCommand } from './commands/ports';
import { securityGroupsCommand } from './commands/security-groups';
import { segmentsCommand } from './commands/segments';
import { tenantsCommand } from './commands/tenants';

/**
 * overlayctl: the REST API of overlayd for people (tables) and scripts (`--json`, exit codes by
 * class of failure). Where it connects and with what token: config.ts; the exit codes: exit-codes.ts.
 */
export function buildProgram(): Command {
  const program = new Command('overlayctl')
    .description('Operate an overlay-controller deployment through its REST API.')
    .option('--url <url>', 'the API (default: OVERLAY_URL, else the config file, else http://127.0.0.1:8080)')
    .option('--config <file>', 'config file {"url", "token"} (default: OVERLAY_CONFIG, else ~/.config/overlayctl/config.json); mode 0600')
    .option('--json', "print the API's JSON instead of tables (for scripts)")
    .addHelpText(
      'after',
      [
        '',
        'The token comes from OVERLAY_TOKEN, else from the config file; it is never printed.',
        '',
        'Exit codes:',
        ...Object.entries(EXIT_CODE_TEXT).map(([code, text]) => `  ${code}  ${text}`),
      ].join('\n'),
    );
  for (const command of [tenantsCommand(), segmentsCommand(), hostsCommand(), portsCommand(), securityGroupsCommand(), migrationsCommand(), mirrorSessionsCommand(), auditCommand()]) {
    program.addCommand(command);
  }
  program
    .command('completion')
    .description('print a shell completion script: source <(overlayctl completion bash)')
    .argument('<shell>', 'bash (zsh: run `autoload bashcompinit && bashcompinit` first)')
    .action((shell: string) => {
      if (shell !== 'bash') {
        throw new CliError(ExitCode.Usage, `no completion for ${JSON.stringify(shell)}; bash only (zsh: bashcompinit)`);
      }
      process.stdout.write(bashCompletion(program));
    });
  return program;
}

function report(err: unknown): ExitCode {
  if (err instanceof CliError) {
    process.stderr.write(`overlayctl: ${err.message}\n`);
    if (err.field !== undefined) {
      const flag = flagOfField(err.field);
      process.stderr.write(`overlayctl: field: ${err.field}${flag ? ` (${flag})` : ''}\n`);
    }
    return err.exitCode;
  }
  process.stderr.write(`overlayctl: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return ExitCode.ServerError;
}

async function main(): Promise<void> {
  // A reader that goes away (`overlayctl ports | head`) is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? ExitCode.Ok : ExitCode.ServerError));
  let code: ExitCode = ExitCode.Ok;
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    code = report(err);
  }
  // Exit once stdout is written: fetch's idle keep-alive sockets must not hold the process.
  process.stdout.write('', () => process.exit(code));
}

if (require.main === module) {
  void main();
}
