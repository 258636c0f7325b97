import { ExitCode, exitCodeOf } from './exit-codes';

describe('overlayctl exit codes', () => {
  it('classes an API error by its code, through the controller map, else by its status', () => {
    expect(exitCodeOf(400, 'IP_OUTSIDE_CIDR')).toBe(ExitCode.Usage);
    expect(exitCodeOf(413, 'BODY_TOO_LARGE')).toBe(ExitCode.Usage);
    expect(exitCodeOf(401, 'UNAUTHENTICATED')).toBe(ExitCode.Auth);
    expect(exitCodeOf(403, 'FORBIDDEN')).toBe(ExitCode.Auth);
    expect(exitCodeOf(404, 'PORT_NOT_FOUND')).toBe(ExitCode.NotFound);
    expect(exitCodeOf(409, 'DUPLICATE_IP')).toBe(ExitCode.Conflict);
    expect(exitCodeOf(503, 'STORE_UNAVAILABLE')).toBe(ExitCode.Unavailable);
    expect(exitCodeOf(504, 'TIMEOUT')).toBe(ExitCode.Unavailable);
    expect(exitCodeOf(408, 'REQUEST_TIMEOUT')).toBe(ExitCode.Unavailable);
    expect(exitCodeOf(500, 'INTERNAL')).toBe(ExitCode.ServerError);
    // A code this overlayctl does not know (a newer server), or none (a proxy): the status decides.
    expect(exitCodeOf(409, 'SOMETHING_NEW')).toBe(ExitCode.Conflict);
    expect(exitCodeOf(502, undefined)).toBe(ExitCode.Unavailable);
    expect(exitCodeOf(418, undefined)).toBe(ExitCode.ServerError);
  });
});
