import { render, screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import Keys from './Keys.svelte';
import { TestBackend, type KeyRow } from '../../lib/backend';

function key(i: number, extra: Partial<KeyRow> = {}): KeyRow {
  return {
    id: `k${i}`, name: `key-${String(i).padStart(5, '0')}`, kind: i % 2 ? 'aws' : 'static',
    owner: i % 3 ? 'platform' : 'data', purpose: null, tags: i % 5 ? ['ci'] : ['prod'],
    created: '2026-01-01T00:00:00Z', rotated: null, rotation_interval_days: null, expires: null,
    last_used: null, use_count: 0, state: 'ok', ...extra,
  };
}

async function unlocked(keys: KeyRow[]) {
  const b = new TestBackend();
  await b.initVault('orbit-maple-quartz-lantern-7', 'S', b.validCode);
  await b.unlock('orbit-maple-quartz-lantern-7', { kind: 'totp', code: b.validCode });
  b.keys = keys;
  return b;
}

describe('keys', () => {
  it('says what to do when there are none', async () => {
    render(Keys, { backend: await unlocked([]) });
    expect(await screen.findByTestId('keys-empty')).toHaveTextContent('Add key');
  });

  it('renders only the visible rows of 10,000 keys and filters as you type', async () => {
    const user = userEvent.setup();
    const many = Array.from({ length: 10_000 }, (_, i) => key(i));
    render(Keys, { backend: await unlocked(many) });
    expect(await screen.findByTestId('key-count')).toHaveTextContent('10000 of 10000 keys');
    const rows = screen.getAllByTestId('key-row').length;
    expect(rows).toBeGreaterThan(0);
    expect(rows).toBeLessThan(100);
    await user.type(screen.getByTestId('key-search'), 'key-0042');
    await waitFor(() => expect(screen.getByTestId('key-count')).toHaveTextContent('10 of 10000 keys'));
    expect(screen.getAllByTestId('key-row')[0]).toHaveTextContent('key-00420');
  });

  it('shows state badges and filters by state and kind', async () => {
    const user = userEvent.setup();
    render(Keys, {
      backend: await unlocked([
        key(1, { name: 'fresh' }), key(2, { name: 'old', state: 'overdue' }), key(3, { name: 'gone', state: 'expired' }),
      ]),
    });
    await screen.findByText('fresh');
    expect(screen.getAllByTestId('key-state').map((b) => b.textContent)).toEqual(['OK', 'Overdue', 'Expired']);
    await user.selectOptions(screen.getByTestId('filter-state'), 'overdue');
    expect(screen.getAllByTestId('key-row')).toHaveLength(1);
    expect(screen.getByText('old')).toBeInTheDocument();
  });

  it('adds a key and removes one after confirmation', async () => {
    const user = userEvent.setup();
    const backend = await unlocked([key(7, { name: 'legacy' })]);
    render(Keys, { backend });
    await user.click(await screen.findByTestId('add-key'));
    await user.type(screen.getByTestId('add-name'), 'prod');
    await user.type(screen.getByTestId('add-access-key-id'), 'AKIAEXAMPLE000000001');
    await user.type(screen.getByTestId('add-secret'), 'secret');
    await user.click(screen.getByTestId('add-submit'));
    await waitFor(() => expect(screen.getByText('prod')).toBeInTheDocument());
    expect(backend.keys.map((k) => k.name)).toContain('prod');

    await user.click(screen.getByRole('button', { name: 'Remove legacy' }));
    await user.click(screen.getByTestId('confirm-remove'));
    await waitFor(() => expect(screen.queryByText('legacy')).not.toBeInTheDocument());
  });
});
