import { render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import Settings from './Settings.svelte';
import { TestBackend } from '../../lib/backend';

describe('settings', () => {
  it('shows locking, storage and factors, with recovery codes counted', async () => {
    const b = new TestBackend();
    await b.initVault('orbit-maple-quartz-lantern-7', 'S', b.validCode);
    b.factors = async () => [
      { id: 't', kind: 'totp', label: 'phone', created: '2026-11-01T00:00:00Z' },
      { id: 'r1', kind: 'recovery', label: 'recovery code 1', created: '2026-11-01T00:00:00Z' },
      { id: 'r2', kind: 'recovery', label: 'recovery code 2', created: '2026-11-01T00:00:00Z' },
    ];
    render(Settings, { backend: b });
    await screen.findByText(/Authenticator app — phone/);
    const list = screen.getByTestId('factors');
    expect(list).toHaveTextContent('Recovery codes — 2 left');
    expect(screen.getByText(/Locks after 15 min/)).toBeInTheDocument();
    expect(screen.getByText(/system keychain/)).toBeInTheDocument();
  });
});
