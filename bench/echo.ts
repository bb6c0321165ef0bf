/** The session id of the bench's echo through the leaf link (latency.ts, site-probe.ts): no agent session has it. */
export const ECHO_SESSION = 'bench-echo';
