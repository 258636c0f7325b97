import { ErrorCode } from '../controller/errors';
import { httpStatusOf } from '../controller/http/http-status';

/**
 * overlayctl's exit status, by class of failure, so that a script can tell "try again later"
 * from "fix the request" without parsing text. docs/operations.md lists them (overlayctl).
 */
export enum ExitCode {
  Ok = 0,
  /** Bad arguments, a bad config file, or input the API refused (400, 413, 415, 431). */
  Usage = 1,
  /** 404: no such tenant, segment, host, port... */
  NotFound = 2,
  /** 409: the request conflicts with the state (a name taken, a tenant that still has segments...). */
  Conflict = 3,
  /** 401 or 403: no token, a bad or expired one, or a role without the right. */
  Auth = 4,
  /** The controller cannot be reached, did not answer in time, or cannot reach Redis (408, 503, 504). */
  Unavailable = 5,
  /** The write is done and durable, but not every host acknowledged it within the wait (202). */
  NotRealized = 6,
  /** `migrations watch`: the migration ended without completing (aborted or expired). */
  MigrationFailed = 7,
  /** 500 or an answer overlayctl does not understand. */
  ServerError = 8,
}

export const EXIT_CODE_TEXT: Readonly<Record<ExitCode, string>> = {
  [ExitCode.Ok]: 'success',
  [ExitCode.Usage]: 'usage: bad arguments or config file, or input the API refused (HTTP 400, 413, 415, 431)',
  [ExitCode.NotFound]: 'not found (HTTP 404)',
  [ExitCode.Conflict]: 'conflict with the current state (HTTP 409)',
  [ExitCode.Auth]: 'no token, a bad one, or a role without the right (HTTP 401, 403)',
  [ExitCode.Unavailable]: 'controller unreachable or timed out, or its Redis is (HTTP 408, 503, 504)',
  [ExitCode.NotRealized]: 'written, but not acknowledged by every host within the wait (HTTP 202)',
  [ExitCode.MigrationFailed]: 'the migration ended aborted or expired',
  [ExitCode.ServerError]: 'server error (HTTP 500) or an unexpected answer',
};

/** A failure overlayctl reports on stderr and exits with. `field` is the API's offending input (a JSON path). */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

/** The class of an API error: from its code through the controller's own code -> status map, else from the status. */
export function exitCodeOf(status: number, code: string | undefined): ExitCode {
  const effective = code !== undefined && KNOWN_CODES.has(code) ? httpStatusOf(code as ErrorCode) : status;
  switch (effective) {
    case 400:
    case 413:
    case 415:
    case 431:
      return ExitCode.Usage;
    case 401:
    case 403:
      return ExitCode.Auth;
    case 404:
      return ExitCode.NotFound;
    case 409:
      return ExitCode.Conflict;
    case 408:
    case 502:
    case 503:
    case 504:
      return ExitCode.Unavailable;
    default:
      return ExitCode.ServerError;
  }
}
