/** The one line a screen shows for a failed call: the agent's message (a `BackendError`), or
 * what else went wrong. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Runs a screen's call and gives the line its error banner shows: empty when the call worked,
 * the one-line message when it failed. The one place a failed call becomes what the user reads.
 */
export async function attempt(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
    return '';
  } catch (err) {
    return messageOf(err);
  }
}
