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

  it("opens the key a notification is about, with its rotation for Rotate now, after an unlock if locked", async () => {
    const user = userEvent.setup();
    const b = await vault();
    await b.unlock('orbit-maple-quartz-lantern-7', { kind: 'totp', code: b.validCode });
    await b.addAws('deploy', { tags: [] }, {} as never);
    await b.addStatic('gh', { tags: [] }, 'ghp_x');
    render(App, { backend: b });
    expect(await screen.findByTestId('nav-overview')).toHaveAttribute('aria-current', 'page');

    // Clicking the notification: the key's detail.
    b.showKey('gh', false);
    expect(await screen.findByTestId('key-detail')).toHaveTextContent('gh');
    expect(screen.getByTestId('nav-keys')).toHaveAttribute('aria-current', 'page');
    expect(screen.queryByTestId('rotate-form')).toBeNull();

    // "Rotate now" on an AWS key: its rotation at AWS, ready to go.
    b.showKey('deploy', true);
    expect(await screen.findByTestId('rotate-aws-form')).toBeInTheDocument();
    expect(screen.getByTestId('key-detail')).toHaveTextContent('deploy');

    // Locked when asked: the key once unlocked, not the Overview.
    await b.lock();
    await screen.findByTestId('unlock-screen');
    b.showKey('gh', true);
    await user.type(screen.getByTestId('passphrase'), 'orbit-maple-quartz-lantern-7');
    await user.type(screen.getByTestId('code'), b.validCode);
    await user.click(screen.getByTestId('unlock-submit'));
    expect(await screen.findByTestId('rotate-form')).toBeInTheDocument();
    expect(screen.getByTestId('key-detail')).toHaveTextContent('gh');
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
