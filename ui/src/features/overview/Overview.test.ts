import { screen, within } from '@testing-library/svelte';
import { render } from '../../test-render';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import Overview from './Overview.svelte';
import type { KeyRow } from '../../lib/backend';
import { TestBackend } from '../../lib/backend/test';
import { keyRow } from '../../lib/backend/fixtures';

const key = (name: string, extra: Partial<KeyRow> = {}) => keyRow(name, { kind: 'aws', owner: 'platform', ...extra });

async function unlocked(keys: KeyRow[]) {
  const b = new TestBackend();
  await b.initVault('orbit-maple-quartz-lantern-7', 'S', b.validCode);
  await b.unlock('orbit-maple-quartz-lantern-7', { kind: 'totp', code: b.validCode });
  b.keys = keys;
  return b;
}

describe('overview', () => {
  it('counts the keys by state and lists those that need action (in the agent\'s order: worst first), with why', async () => {
    const b = await unlocked([
      key('calm'),
      key('prod', { state: 'overdue', blocked: true, rule: "rule 'prod-aws'", reason: "rotation overdue since 2026-11-22 (max_key_age_days = 30, rule 'prod-aws')" }),
      key('soon', { state: 'due_soon', reason: 'rotation due on 2026-12-20 (its rotation interval of 90 days)' }),
    ]);
    render(Overview, { backend: b, onkeys: () => {} });
    const counts = await screen.findByTestId('overview-counts');
    expect(within(counts).getByTestId('count-ok')).toHaveTextContent('1');
    expect(within(counts).getByTestId('count-due_soon')).toHaveTextContent('1');
    expect(within(counts).getByTestId('count-overdue')).toHaveTextContent('1');
    expect(within(counts).getByTestId('count-expired')).toHaveTextContent('0');
    const rows = screen.getAllByTestId('attention-row');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent(/prod.*rotation overdue since 2026-11-22.*rule 'prod-aws'.*issues nothing until rotated/);
    expect(rows[1]).toHaveTextContent(/soon.*rotation due on 2026-12-20/);
    expect(screen.getByTestId('overview-policy')).toHaveTextContent('No administrator policy');
  });

  it('opens the key to rotate it, and comes back', async () => {
    const user = userEvent.setup();
    const b = await unlocked([key('prod', { state: 'expired', reason: 'expired on 2026-01-01 (its expiry date)' })]);
    render(Overview, { backend: b, onkeys: () => {} });
    await user.click(await screen.findByTestId('attention-open'));
    expect(await screen.findByTestId('rotate')).toBeInTheDocument();
  });

  it('says so when every key is up to date, and sends an empty vault to Keys', async () => {
    const user = userEvent.setup();
    render(Overview, { backend: await unlocked([key('calm')]), onkeys: () => {} });
    expect(await screen.findByTestId('overview-all-ok')).toHaveTextContent('Every key is up to date');
    const onkeys = vi.fn();
    document.body.innerHTML = '';
    render(Overview, { backend: await unlocked([]), onkeys });
    await user.click(await screen.findByTestId('overview-go-keys'));
    expect(onkeys).toHaveBeenCalled();
  });

  it('shows the policy in force, and says loudly when it cannot be used', async () => {
    const b = await unlocked([key('calm')]);
    b.policy = { ...b.policy, sha256: 'ab'.repeat(32), rules: [{ name: 'prod-aws', kinds: ['aws'], tags: ['prod'], limits: [] }] };
    render(Overview, { backend: b, onkeys: () => {} });
    expect(await screen.findByTestId('overview-policy')).toHaveTextContent('Policy set by your administrator (rules: prod-aws)');
    document.body.innerHTML = '';
    b.policy = { ...b.policy, sha256: null, unusable: true, refused: 'policy.toml line 2: invalid type' };
    render(Overview, { backend: b, onkeys: () => {} });
    expect(await screen.findByTestId('overview-policy')).toHaveTextContent(/cannot be used.*line 2: invalid type/);
  });
});
