import { screen, waitFor } from '@testing-library/svelte';
import { render } from '../../test-render';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import Settings from './Settings.svelte';
import { TestBackend } from '../../lib/backend/test';

const PASS = 'orbit-maple-quartz-lantern-7';

async function backend() {
  const b = new TestBackend();
  await b.initVault(PASS, 'S', b.validCode);
  return b;
}

describe('settings', () => {
  it('shows locking, storage, policy and factors, with recovery codes counted', async () => {
    const b = await backend();
    b.factorList = [
      { id: 't', kind: 'totp', label: 'phone', created: '2026-11-01T00:00:00Z' },
      { id: 'r1', kind: 'recovery', label: 'recovery code 1', created: '2026-11-01T00:00:00Z' },
      { id: 'r2', kind: 'recovery', label: 'recovery code 2', created: '2026-11-01T00:00:00Z' },
    ];
    render(Settings, { backend: b });
    await screen.findByText(/Authenticator app — phone/);
    expect(screen.getByTestId('recovery-left')).toHaveTextContent('Recovery codes — 2 left');
    expect((screen.getByTestId('auto-lock') as HTMLSelectElement).value).toBe('900');
    expect(screen.getByText(/system keychain/)).toBeInTheDocument();
    expect(screen.getByTestId('policy')).toHaveTextContent(/No administrator policy/);
  });

  it('turns on the code for standing grants at once, and off only with a current code', async () => {
    const user = userEvent.setup();
    const b = await backend();
    render(Settings, { backend: b });
    expect(await screen.findByTestId('grants-code-state')).toHaveTextContent('Off');
    await user.click(screen.getByTestId('grants-code-on'));
    await waitFor(() => expect(screen.getByTestId('grants-code-state')).toHaveTextContent('On'));
    expect(b.grantsNeedCode).toBe(true);

    expect(screen.getByTestId('grants-code-off')).toBeDisabled();
    await user.type(screen.getByTestId('grants-code-off-code'), '000000');
    await user.click(screen.getByTestId('grants-code-off'));
    expect(await screen.findByTestId('settings-error')).toHaveTextContent('does not match your authenticator app');
    expect(b.grantsNeedCode).toBe(true);
    await user.type(screen.getByTestId('grants-code-off-code'), b.validCode);
    await user.click(screen.getByTestId('grants-code-off'));
    await waitFor(() => expect(screen.getByTestId('grants-code-state')).toHaveTextContent('Off'));
    expect(b.grantsNeedCode).toBe(false);
  });

  it('changes the auto-lock time', async () => {
    const user = userEvent.setup();
    const b = await backend();
    render(Settings, { backend: b });
    const select = await screen.findByTestId('auto-lock');
    await waitFor(() => expect((select as HTMLSelectElement).value).toBe('900'));
    await waitFor(() => expect(screen.getByTestId('auto-lock-save')).toBeDisabled());
    await user.selectOptions(select, '300');
    await user.click(screen.getByTestId('auto-lock-save'));
    expect(await screen.findByTestId('settings-notice')).toHaveTextContent('5 min');
    expect(b.autoLockSecs).toBe(300);
  });

  it('adds a security key, refuses to remove the last app, and removes the key', async () => {
    const user = userEvent.setup();
    const b = await backend();
    render(Settings, { backend: b });
    await user.click(await screen.findByTestId('add-security-key'));
    await user.type(screen.getByTestId('key-label'), 'blue key');
    await user.type(screen.getByTestId('key-passphrase'), PASS);
    await user.click(screen.getByTestId('key-enroll'));
    expect(await screen.findByTestId('settings-notice')).toHaveTextContent('blue key');
    await waitFor(() => expect(screen.getAllByTestId('factor')).toHaveLength(2));

    await user.click(screen.getByRole('button', { name: 'Remove authenticator app' }));
    await user.click(screen.getByTestId('confirm-remove-factor'));
    expect(await screen.findByTestId('settings-error')).toHaveTextContent(/last second factor/);

    await user.click(screen.getByRole('button', { name: 'Remove blue key' }));
    await user.click(screen.getByTestId('confirm-remove-factor'));
    await waitFor(() => expect(screen.getAllByTestId('factor')).toHaveLength(1));
  });

  it('makes new recovery codes and shows them once', async () => {
    const user = userEvent.setup();
    const b = await backend();
    render(Settings, { backend: b });
    await user.click(await screen.findByTestId('new-codes'));
    await user.type(screen.getByTestId('codes-passphrase'), PASS);
    await user.click(screen.getByTestId('codes-make'));
    const shown = await screen.findByTestId('new-codes-shown');
    expect(shown.querySelectorAll('li')).toHaveLength(8);
    await user.click(screen.getByTestId('codes-stored'));
    expect(screen.queryByTestId('new-codes-shown')).toBeNull();
  });
});

describe('the administrator policy in Settings', () => {
  it('shows what the policy sets, read-only, and a refused change', async () => {
    const b = await backend();
    b.policy = {
      path: '/etc/keyward/policy.toml', sha256: 'ab12cd34ef56ab12cd34ef56', since: '2026-12-02T10:00:00Z',
      defaults: [{ name: 'max_key_age_days', value: '90' }, { name: 'auto_lock_max_secs', value: '1800' }],
      rules: [{ name: 'prod-aws', kinds: ['aws'], tags: ['prod'], limits: [{ name: 'enforcement', value: 'block' }] }],
      refused: '/etc/keyward/policy.toml line 3: unknown field `max_age_days`', unusable: false,
    };
    render(Settings, { backend: b });
    const card = await screen.findByTestId('policy');
    expect(card).toHaveTextContent('Set by your administrator');
    expect(screen.getByTestId('policy-defaults')).toHaveTextContent('rotate keys at least every 90 days');
    expect(screen.getByTestId('policy-defaults')).toHaveTextContent('locks after at most 30 min idle');
    expect(card).toHaveTextContent('prod-aws — aws keys tagged prod');
    expect(screen.getByTestId('policy-rule')).toHaveTextContent('overdue or expired keys issue nothing');
    expect(screen.getByTestId('policy-refused')).toHaveTextContent('the last good policy stays in force: /etc/keyward/policy.toml line 3: unknown field `max_age_days`');
    // Nothing in the card changes it.
    expect(card.querySelector('input, select, button')).toBeNull();
  });

  it('says plainly when the policy cannot be used', async () => {
    const b = await backend();
    b.policy = { ...b.policy, unusable: true, refused: '/etc/keyward/policy.toml is not trusted: everyone may write it' };
    render(Settings, { backend: b });
    expect(await screen.findByTestId('policy-unusable')).toHaveTextContent('nothing is issued until it is fixed');
    expect(screen.getByTestId('policy-refused')).toHaveTextContent('everyone may write it');
  });
});
