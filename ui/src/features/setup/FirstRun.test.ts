import { screen, waitFor } from '@testing-library/svelte';
import { render } from '../../test-render';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import FirstRun from './FirstRun.svelte';
import { TestBackend } from '../../lib/backend/test';

describe('first run', () => {
  it('refuses a weak passphrase with the reason, then walks through TOTP and recovery codes', async () => {
    const user = userEvent.setup();
    const backend = new TestBackend();
    const ondone = vi.fn();
    render(FirstRun, { backend, ondone });

    await user.type(screen.getByTestId('new-passphrase'), 'short');
    await waitFor(() => expect(screen.getByTestId('strength').textContent).toMatch(/too short/));
    expect(screen.getByTestId('passphrase-continue')).toBeDisabled();

    await user.clear(screen.getByTestId('new-passphrase'));
    await user.type(screen.getByTestId('new-passphrase'), 'orbit-maple-quartz-lantern-7');
    await user.type(screen.getByTestId('confirm-passphrase'), 'orbit-maple-quartz-lantern-7');
    await waitFor(() => expect(screen.getByTestId('passphrase-continue')).toBeEnabled());
    await user.click(screen.getByTestId('passphrase-continue'));

    expect(await screen.findByTestId('totp-secret')).toHaveTextContent('JBSWY3DPEHPK3PXP');
    expect(screen.getByAltText(/QR code/)).toBeInTheDocument();
    await user.type(screen.getByTestId('totp-code'), '000000');
    await user.click(screen.getByTestId('create-vault'));
    expect(await screen.findByRole('alert')).toHaveTextContent(/does not match/);

    await user.clear(screen.getByTestId('totp-code'));
    await user.type(screen.getByTestId('totp-code'), backend.validCode);
    await user.click(screen.getByTestId('create-vault'));
    const codes = await screen.findByTestId('recovery-codes');
    expect(codes.querySelectorAll('li')).toHaveLength(8);

    expect(screen.getByTestId('codes-done')).toBeDisabled();
    await user.click(screen.getByTestId('codes-saved'));
    await user.click(screen.getByTestId('codes-done'));
    // Then a security key is offered; skipping it finishes.
    expect(await screen.findByTestId('security-key-form')).toBeInTheDocument();
    expect(ondone).not.toHaveBeenCalled();
    await user.click(screen.getByTestId('first-run-skip-key'));
    expect(ondone).toHaveBeenCalledOnce();
    expect(backend.vault).toBe(true);
  });

  it('enrols a security key as the last, optional step', async () => {
    const user = userEvent.setup();
    const backend = new TestBackend();
    const ondone = vi.fn();
    render(FirstRun, { backend, ondone });
    const pass = 'orbit-maple-quartz-lantern-7';
    await user.type(screen.getByTestId('new-passphrase'), pass);
    await user.type(screen.getByTestId('confirm-passphrase'), pass);
    await waitFor(() => expect(screen.getByTestId('passphrase-continue')).toBeEnabled());
    await user.click(screen.getByTestId('passphrase-continue'));
    await user.type(await screen.findByTestId('totp-code'), backend.validCode);
    await user.click(screen.getByTestId('create-vault'));
    await user.click(await screen.findByTestId('codes-saved'));
    await user.click(screen.getByTestId('codes-done'));
    await user.type(await screen.findByTestId('key-label'), 'blue key');
    await user.type(screen.getByTestId('key-passphrase'), 'wrong-passphrase-here');
    await user.click(screen.getByTestId('key-enroll'));
    expect(await screen.findByTestId('key-error')).toHaveTextContent(/passphrase is wrong/);
    await user.clear(screen.getByTestId('key-passphrase'));
    await user.type(screen.getByTestId('key-passphrase'), pass);
    await user.click(screen.getByTestId('key-enroll'));
    expect(await screen.findByTestId('first-run-key-added')).toHaveTextContent('blue key');
    expect(backend.factorList.some((f) => f.kind === 'fido2' && f.label === 'blue key')).toBe(true);
    await user.click(screen.getByTestId('first-run-finish'));
    expect(ondone).toHaveBeenCalledOnce();
  });

  it('says when the two passphrases differ', async () => {
    const user = userEvent.setup();
    render(FirstRun, { backend: new TestBackend(), ondone: () => {} });
    await user.type(screen.getByTestId('new-passphrase'), 'orbit-maple-quartz-lantern-7');
    await user.type(screen.getByTestId('confirm-passphrase'), 'orbit-maple-quartz-lantern-8');
    expect(screen.getByText('The two passphrases differ.')).toBeInTheDocument();
    expect(screen.getByTestId('passphrase-continue')).toBeDisabled();
  });
});
