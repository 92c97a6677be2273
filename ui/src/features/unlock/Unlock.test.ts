import { screen, waitFor } from '@testing-library/svelte';
import { render } from '../../test-render';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import Unlock from './Unlock.svelte';
import { TestBackend } from '../../lib/backend/test';

async function vault() {
  const b = new TestBackend();
  await b.initVault('orbit-maple-quartz-lantern-7', 'S', b.validCode);
  return b;
}

describe('unlock', () => {
  it('shows the error and the growing delay, with submit off while it runs', async () => {
    const user = userEvent.setup();
    const backend = await vault();
    const onunlocked = vi.fn();
    render(Unlock, { backend, onunlocked });
    await user.type(screen.getByTestId('passphrase'), 'orbit-maple-quartz-lantern-7');
    await user.type(screen.getByTestId('code'), '999999');
    await user.click(screen.getByTestId('unlock-submit'));
    expect(await screen.findByTestId('unlock-error')).toHaveTextContent('the passphrase or the second factor is wrong');
    await waitFor(() => expect(screen.getByTestId('unlock-wait')).toHaveTextContent(/waits before the next try: [12] s/));
    expect(screen.getByTestId('unlock-submit')).toBeDisabled();
    expect(onunlocked).not.toHaveBeenCalled();
  });

  it('unlocks with passphrase and code', async () => {
    const user = userEvent.setup();
    const backend = await vault();
    const onunlocked = vi.fn();
    render(Unlock, { backend, onunlocked });
    await user.type(screen.getByTestId('passphrase'), 'orbit-maple-quartz-lantern-7');
    await user.type(screen.getByTestId('code'), backend.validCode);
    await user.click(screen.getByTestId('unlock-submit'));
    await waitFor(() => expect(onunlocked).toHaveBeenCalledOnce());
    expect(backend.locked).toBe(false);
  });

  it('starts with the countdown the agent reports', () => {
    render(Unlock, { backend: new TestBackend(), waitSecs: 8, onunlocked: () => {} });
    expect(screen.getByTestId('unlock-wait')).toHaveTextContent('8 s');
  });
});

describe('unlock with a security key', () => {
  it('needs only the passphrase and a touch', async () => {
    const user = userEvent.setup();
    const b = new TestBackend();
    await b.initVault('orbit-maple-quartz-lantern-7', 'S', b.validCode);
    await b.lock();
    b.factorList.push({ id: 'k', kind: 'fido2', label: 'blue key', created: '2026-11-01T00:00:00Z' });
    const onunlocked = vi.fn();
    render(Unlock, { backend: b, onunlocked });
    await user.click(screen.getByTestId('toggle-key'));
    expect(screen.queryByTestId('code')).toBeNull();
    await user.type(screen.getByTestId('passphrase'), 'orbit-maple-quartz-lantern-7');
    await user.click(screen.getByTestId('unlock-submit'));
    await waitFor(() => expect(onunlocked).toHaveBeenCalledOnce());
    expect(b.locked).toBe(false);
  });
});
