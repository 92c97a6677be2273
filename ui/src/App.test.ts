import { screen, waitFor } from '@testing-library/svelte';
import { render } from './test-render';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import App from './App.svelte';
import { TestBackend } from './lib/backend/test';

async function vault() {
  const b = new TestBackend();
  await b.initVault('orbit-maple-quartz-lantern-7', 'S', b.validCode);
  return b;
}

describe('app', () => {
  it('starts on first run without a vault, on unlock when locked', async () => {
    render(App, { backend: new TestBackend() });
    expect(await screen.findByTestId('first-run')).toBeInTheDocument();
    await screen.findByTestId('new-passphrase');
  });

  it('goes to the unlock screen when the vault locks elsewhere, and asks about approvals', async () => {
    const user = userEvent.setup();
    const b = await vault();
    await b.unlock('orbit-maple-quartz-lantern-7', { kind: 'totp', code: b.validCode });
    render(App, { backend: b });
    expect(await screen.findByTestId('nav-keys')).toBeInTheDocument();

    b.raiseApproval({
      id: 'q1', client: { exe: '/usr/bin/terraform' }, chain: [{ pid: 3, exe: '/usr/bin/terraform' }],
      profile: 'prod', kind: 'aws', ttl_secs: 900, expires_in_secs: 60, standing_needs_code: false,
    });
    expect(await screen.findByTestId('approval-dialog')).toHaveTextContent('/usr/bin/terraform');
    await user.click(screen.getByTestId('approve-deny'));
    await waitFor(() => expect(screen.queryByTestId('approval-dialog')).not.toBeInTheDocument());
    expect(b.decisions).toEqual([{ id: 'q1', decision: 'deny' }]);

    await b.lock();
    expect(await screen.findByTestId('unlock-screen')).toBeInTheDocument();
  });

  it('switches screens from the keyboard', async () => {
    const user = userEvent.setup();
    const b = await vault();
    await b.unlock('orbit-maple-quartz-lantern-7', { kind: 'totp', code: b.validCode });
    render(App, { backend: b });
    await screen.findByTestId('nav-keys');
    expect(await screen.findByRole('heading', { name: 'Overview' })).toBeInTheDocument();
    await user.keyboard('{Alt>}4{/Alt}');
    expect(await screen.findByRole('heading', { name: 'Activity' })).toBeInTheDocument();
    await user.keyboard('{Control>}w{/Control}');
    expect(b.closed).toBe(true);
  });
});
