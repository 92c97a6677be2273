import { screen, waitFor } from '@testing-library/svelte';
import { render } from '../../test-render';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import Activity from './Activity.svelte';
import { TestBackend } from '../../lib/backend/test';

describe('activity', () => {
  it('lists records newest first and filters by key', async () => {
    const user = userEvent.setup();
    const b = new TestBackend();
    await b.initVault('orbit-maple-quartz-lantern-7', 'S', b.validCode);
    await b.unlock('orbit-maple-quartz-lantern-7', { kind: 'totp', code: b.validCode });
    await b.addStatic('gh', { tags: [] }, 'x');
    await b.addStatic('npm', { tags: [] }, 'y');
    render(Activity, { backend: b });
    const rows = await screen.findAllByTestId('activity-row');
    expect(rows[0]).toHaveTextContent('npm');
    expect(rows).toHaveLength(4);
    await user.type(screen.getByTestId('activity-key'), 'gh');
    await waitFor(() => expect(screen.getAllByTestId('activity-row')).toHaveLength(1));
  });

  it('hides reads (what the window polls) unless asked, and says what happened in words', async () => {
    const user = userEvent.setup();
    const b = new TestBackend();
    await b.initVault('orbit-maple-quartz-lantern-7', 'S', b.validCode);
    const read = { ts: new Date().toISOString(), target: null, outcome: 'ok', detail: {}, actor: { uid: null, pid: null, chain: [] }, client: null, prev_hash: '00', hash: '00' };
    b.audit.push({ ...read, seq: 98, action: 'status', kind: 'read', summary: 'Status read by keyward-desktop' });
    b.audit.push({ ...read, seq: 99, action: 'settings.auto_lock', kind: 'change', summary: 'Auto-lock time changed' });
    render(Activity, { backend: b });
    await screen.findByText('Auto-lock time changed');
    expect(screen.queryByText('Status read by keyward-desktop')).toBeNull();
    await user.click(screen.getByTestId('activity-reads'));
    await screen.findByText('Status read by keyward-desktop');
  });

  it('names the program behind each record: the window itself, or what ran the keyward command', async () => {
    const b = new TestBackend();
    await b.initVault('orbit-maple-quartz-lantern-7', 'S', b.validCode);
    b.audit.push({
      seq: 99, ts: new Date().toISOString(), action: 'issue', target: 'prod', outcome: 'ok', detail: {},
      actor: { uid: 1000, pid: 9, chain: [{ pid: 9, exe: '/usr/bin/keyward' }, { pid: 8, exe: '/usr/bin/python3', script: '/usr/bin/aws' }, { pid: 7, exe: '/usr/bin/bash' }] },
      prev_hash: '00', hash: '00',
      kind: 'issue', client: '/usr/bin/python3 /usr/bin/aws', summary: 'Credentials issued to python3 aws for prod',
    });
    render(Activity, { backend: b });
    const rows = await screen.findAllByTestId('activity-row');
    expect(rows[0]).toHaveTextContent('/usr/bin/python3 /usr/bin/aws');
    expect(rows[rows.length - 1]).toHaveTextContent('/usr/bin/keyward-desktop');
  });
});
