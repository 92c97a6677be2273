import { fireEvent, screen, waitFor } from '@testing-library/svelte';
import { render } from '../../test-render';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import Keys from './Keys.svelte';
import { BackendError, type KeyRow } from '../../lib/backend';
import { TestBackend } from '../../lib/backend/test';
import { keyRow } from '../../lib/backend/fixtures';

function key(i: number, extra: Partial<KeyRow> = {}): KeyRow {
  return keyRow(`key-${String(i).padStart(5, '0')}`, {
    id: `k${i}`, kind: i % 2 ? 'aws' : 'static', owner: i % 3 ? 'platform' : 'data', tags: i % 5 ? ['ci'] : ['prod'], ...extra,
  });
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

  it('keeps the rows of the list and changes their text as you type', async () => {
    const user = userEvent.setup();
    render(Keys, { backend: await unlocked(Array.from({ length: 10_000 }, (_, i) => key(i))) });
    await screen.findByTestId('key-count');
    const before = screen.getAllByTestId('key-row');
    expect(before[0]).toHaveTextContent('key-00000');
    await user.type(screen.getByTestId('key-search'), '7');
    await waitFor(() => expect(screen.getByTestId('key-count')).toHaveTextContent('3439 of 10000 keys'));
    const after = screen.getAllByTestId('key-row');
    // The same elements, in the same order, now showing the matches.
    expect(after[0]).toBe(before[0]);
    expect(after.map((r) => r.querySelector('strong')?.textContent)).toEqual(['key-00007', 'key-00017', 'key-00027', 'key-00037', 'key-00047', 'key-00057'].slice(0, after.length));
  });

  it('moves focus to the list when the focused row scrolls away, not to another key', async () => {
    render(Keys, { backend: await unlocked(Array.from({ length: 10_000 }, (_, i) => key(i))) });
    const open = await screen.findByRole('button', { name: 'Open key-00000' });
    open.focus();
    const list = screen.getByRole('list');
    // One row down: key-00000 is still rendered (overscan), focus stays on it.
    list.scrollTop = 48;
    await fireEvent.scroll(list);
    expect(document.activeElement).toBe(open);
    expect(open).toHaveAccessibleName('Open key-00000');
    // Far down: its row now shows another key, so the list itself takes focus.
    list.scrollTop = 48 * 200;
    await fireEvent.scroll(list);
    await waitFor(() => expect(document.activeElement).toBe(list));
    expect(screen.getAllByTestId('key-row')[0]).not.toHaveTextContent('key-00000');
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

describe('key detail', () => {
  it('edits details, reveals for 30 s, copies in Rust, rotates, and shows the history', async () => {
    const user = userEvent.setup();
    const b = await unlocked([]);
    await b.addStatic('gh', { tags: ['ci'], owner: 'me' }, 'ghp_x');
    render(Keys, { backend: b });
    await user.click(await screen.findByRole('button', { name: 'Open gh' }));
    expect(await screen.findByTestId('key-detail')).toBeInTheDocument();

    // Edit.
    const owner = screen.getByTestId('edit-owner');
    await waitFor(() => expect(owner).toHaveValue('me'));
    await user.clear(owner);
    await user.type(owner, 'platform');
    await user.type(screen.getByTestId('edit-rotate'), '30');
    await user.click(screen.getByTestId('edit-save'));
    expect(await screen.findByTestId('detail-notice')).toHaveTextContent('Saved');
    expect(b.keys[0].owner).toBe('platform');
    expect(b.keys[0].rotation_interval_days).toBe(30);

    // The secret is not on screen until Reveal, and Copy never brings it to the page.
    expect(screen.queryByTestId('revealed')).toBeNull();
    await user.click(screen.getByTestId('copy'));
    expect(await screen.findByTestId('detail-notice')).toHaveTextContent(/cleared in 30 s/);
    expect(b.copied).toEqual(['gh']);
    expect(screen.queryByText('ghp_x')).toBeNull();
    await user.click(screen.getByTestId('reveal'));
    expect(await screen.findByTestId('revealed')).toHaveTextContent('secret-value');
    await user.click(screen.getByTestId('reveal'));
    expect(screen.queryByTestId('revealed')).toBeNull();

    // Rotate.
    await user.click(screen.getByTestId('rotate'));
    await user.type(screen.getByTestId('rotate-secret'), 'ghp_new');
    await user.click(screen.getByTestId('rotate-save'));
    await waitFor(() => expect(screen.getByTestId('detail-rotated')).not.toHaveTextContent('never'));
    const actions = screen.getAllByTestId('history-row').map((r) => r.getAttribute('data-action'));
    expect(actions).toEqual(['rotate', 'reveal', 'reveal', 'update', 'add']);

    await user.click(screen.getByTestId('detail-back'));
    expect(await screen.findByTestId('key-count')).toHaveTextContent('1 of 1');
  });

  it('asks for a current code before Reveal or Copy once the minute since a factor is over', async () => {
    const user = userEvent.setup();
    const b = await unlocked([]);
    await b.addStatic('gh', { tags: [] }, 'ghp_x');
    b.freshUntil = 0; // the unlock was more than a minute ago
    render(Keys, { backend: b });
    await user.click(await screen.findByRole('button', { name: 'Open gh' }));

    // Reveal asks first, and shows nothing until a right code.
    await user.click(await screen.findByTestId('reveal'));
    const dialog = await screen.findByRole('dialog', { name: 'Confirm it is you' });
    expect(dialog).toHaveTextContent('To reveal the stored secret, enter the current code');
    expect(screen.getByTestId('factor-code')).toHaveFocus();
    expect(screen.getByTestId('factor-confirm')).toBeDisabled();
    await user.type(screen.getByTestId('factor-code'), '000000');
    await user.click(screen.getByTestId('factor-confirm'));
    expect(await screen.findByTestId('factor-error')).toHaveTextContent('does not match your authenticator app');
    expect(screen.queryByTestId('revealed')).toBeNull();
    await user.type(screen.getByTestId('factor-code'), b.validCode);
    await user.click(screen.getByTestId('factor-confirm'));
    expect(await screen.findByTestId('revealed')).toHaveTextContent('secret-value');
    expect(screen.queryByRole('dialog')).toBeNull();

    // Within the minute Copy asks nothing more.
    await user.click(screen.getByTestId('copy'));
    expect(await screen.findByTestId('detail-notice')).toHaveTextContent(/cleared in 30 s/);
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(b.copied).toEqual(['gh']);

    // A minute later it asks again; Escape (or Cancel) leaves the secret where it is.
    b.freshUntil = 0;
    await user.click(screen.getByTestId('copy'));
    expect(await screen.findByRole('dialog')).toHaveTextContent('To copy the stored secret');
    await user.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(screen.getByTestId('key-detail')).toBeInTheDocument();
    expect(b.copied).toEqual(['gh']);
    const checks = b.audit.filter((r) => r.action === 'factor.check').map((r) => r.outcome);
    expect(checks).toEqual(['failed', 'ok']);
  });

  it('hides a revealed secret by itself after the time the app gives', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
      const b = await unlocked([]);
      await b.addStatic('gh', { tags: [] }, 'ghp_x');
      render(Keys, { backend: b });
      await user.click(await screen.findByRole('button', { name: 'Open gh' }));
      await user.click(await screen.findByTestId('reveal'));
      expect(await screen.findByTestId('revealed')).toBeInTheDocument();
      await vi.advanceTimersByTimeAsync(29_000);
      expect(screen.queryByTestId('revealed')).not.toBeNull();
      await vi.advanceTimersByTimeAsync(2_000);
      expect(screen.queryByTestId('revealed')).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('import', () => {
  it('lists what can be imported, says why the rest cannot, and imports with clean-up', async () => {
    const user = userEvent.setup();
    const b = await unlocked([]);
    b.importable = {
      path: '/home/me/.aws/credentials',
      candidates: [
        { name: 'prod', access_key_hint: 'AKIA…7EXA', region: 'eu-west-1', problem: null },
        { name: 'temp', access_key_hint: 'ASIA…0001', region: null, problem: 'temporary credentials (a session token), not a long-lived key' },
      ],
    };
    render(Keys, { backend: b });
    await user.click(await screen.findByTestId('import-aws'));
    const dialog = await screen.findByTestId('import-dialog');
    expect(dialog).toHaveTextContent('temporary credentials');
    const picks = screen.getAllByTestId('import-pick');
    expect(picks[0]).toBeChecked();
    expect(picks[1]).toBeDisabled();
    expect(screen.getByTestId('import-clean')).toBeChecked();
    await user.click(screen.getByTestId('import-run'));
    expect(await screen.findByTestId('import-result')).toHaveTextContent(/Imported: prod/);
    expect(screen.getByTestId('import-result')).toHaveTextContent(/backup/);
    await user.click(screen.getByTestId('import-done'));
    expect(await screen.findByTestId('key-count')).toHaveTextContent('1 of 1');
  });
});

describe('import dialog', () => {
  it('closes with Escape and says when there is nothing to import', async () => {
    const user = userEvent.setup();
    render(Keys, { backend: await unlocked([]) });
    await user.click(await screen.findByTestId('import-aws'));
    expect(await screen.findByTestId('import-none')).toHaveTextContent('No long-lived keys found');
    await user.keyboard('{Escape}');
    await waitFor(() => expect(screen.queryByTestId('import-dialog')).toBeNull());
  });
});

describe('OAuth2 clients', () => {
  const client = {
    client_id: 'ci-bot', client_secret: 'cs-first', token_url: 'https://auth.example.com/oauth/token',
    scopes: ['deploy:read'], introspection_url: 'https://auth.example.com/oauth/introspect',
  };

  async function fillOauth2(user: ReturnType<typeof userEvent.setup>, tokenUrl: string) {
    await user.click(await screen.findByTestId('add-key'));
    await user.selectOptions(screen.getByTestId('add-kind'), 'oauth2');
    await user.type(screen.getByTestId('add-name'), 'ci-bot');
    await user.type(screen.getByTestId('add-client-id'), 'ci-bot');
    await user.type(screen.getByTestId('add-secret'), 'cs-4f9a');
    await user.type(screen.getByTestId('add-token-url'), tokenUrl);
  }

  it('adds a client through the form with its scopes and client authentication, lists it as OAuth2 and tests it', async () => {
    const user = userEvent.setup();
    const b = await unlocked([]);
    await b.addStatic('gh', { tags: [] }, 'ghp_x');
    const add = vi.spyOn(b, 'addOauth2');
    render(Keys, { backend: b });
    await user.click(await screen.findByTestId('add-key'));
    await user.selectOptions(screen.getByTestId('add-kind'), 'oauth2');
    // The AWS fields give way to the client's.
    expect(screen.queryByTestId('add-access-key-id')).toBeNull();
    expect(screen.getByLabelText(/Name/)).toBe(screen.getByTestId('add-name'));
    expect(screen.getByText(/also the profile tools ask for/)).toBeInTheDocument();
    expect(screen.getByLabelText('Client secret')).toHaveAttribute('type', 'password');
    expect(screen.getByTestId('add-token-url')).toHaveAttribute('placeholder', 'https://auth.example.com/oauth/token');
    expect(screen.getByTestId('add-auth')).toHaveValue('basic');
    expect(screen.getByTestId('add-key-form')).toHaveTextContent('"Test" uses it to confirm the client and scope');

    await user.type(screen.getByTestId('add-name'), 'ci-bot');
    await user.type(screen.getByTestId('add-client-id'), '  ci-bot ');
    await user.type(screen.getByTestId('add-secret'), 'cs-4f9a');
    await user.type(screen.getByTestId('add-token-url'), 'https://auth.example.com/oauth/token');
    await user.type(screen.getByTestId('add-scopes'), 'deploy:read, deploy:write  repo');
    await user.selectOptions(screen.getByTestId('add-auth'), 'post');
    await user.type(screen.getByTestId('add-introspection-url'), 'https://auth.example.com/oauth/introspect');
    await user.click(screen.getByTestId('add-submit'));

    await waitFor(() => expect(screen.queryByTestId('add-key-form')).toBeNull());
    expect(add).toHaveBeenCalledTimes(1);
    expect(add).toHaveBeenCalledWith('ci-bot', { tags: [] }, {
      client_id: 'ci-bot', client_secret: 'cs-4f9a', token_url: 'https://auth.example.com/oauth/token',
      scopes: ['deploy:read', 'deploy:write', 'repo'], auth: 'post',
      introspection_url: 'https://auth.example.com/oauth/introspect',
    });
    expect(b.keys.find((k) => k.name === 'ci-bot')?.config?.oauth2).toEqual({
      client_id: 'ci-bot', token_url: 'https://auth.example.com/oauth/token',
      scopes: ['deploy:read', 'deploy:write', 'repo'], auth: 'post',
      introspection_url: 'https://auth.example.com/oauth/introspect',
    });

    // Listed with its kind, found by the kind filter, and testable (a token is not).
    const row = (await screen.findByRole('button', { name: 'Open ci-bot' })).closest('[data-testid="key-row"]');
    expect(row).toHaveTextContent(/OAuth2/);
    expect(screen.queryByRole('button', { name: 'Test gh' })).toBeNull();
    await user.selectOptions(screen.getByTestId('filter-kind'), 'oauth2');
    expect(screen.getAllByTestId('key-row')).toHaveLength(1);
    expect(screen.getByTestId('key-count')).toHaveTextContent('1 of 2 keys');
    await user.click(screen.getByRole('button', { name: 'Test ci-bot' }));
    expect(await screen.findByText(/^Works: client ci-bot · scope deploy:read deploy:write repo · token until \S/)).toBeInTheDocument();
  });

  it("shows the agent's one-line error for a token URL that is not https and keeps what was typed", async () => {
    const user = userEvent.setup();
    const b = await unlocked([]);
    // The agent's words (keyward-core `entry`), which the window shows as they come.
    vi.spyOn(b, 'addOauth2').mockRejectedValueOnce(new BackendError('invalid',
      "invalid token URL 'http://auth.example.com/oauth/token': use https://… (or http://127.0.0.1:PORT for a local test server), with no user name, password or #fragment"));
    render(Keys, { backend: b });
    await fillOauth2(user, 'http://auth.example.com/oauth/token');
    await user.click(screen.getByTestId('add-submit'));
    const err = await screen.findByTestId('add-error');
    expect(err).toHaveTextContent("invalid token URL 'http://auth.example.com/oauth/token': use https://…");
    expect(err.textContent).not.toContain('\n');
    expect(b.keys).toEqual([]);
    expect(screen.getByTestId('add-client-id')).toHaveValue('ci-bot');
    expect(screen.getByTestId('add-secret')).toHaveValue('cs-4f9a');

    // Corrected (a test server on this machine may use plain http), the same form goes through.
    await user.clear(screen.getByTestId('add-token-url'));
    await user.type(screen.getByTestId('add-token-url'), 'http://127.0.0.1:8080/token');
    await user.click(screen.getByTestId('add-submit'));
    expect(await screen.findByRole('button', { name: 'Open ci-bot' })).toBeInTheDocument();
    expect(b.keys.map((k) => [k.name, k.kind])).toEqual([['ci-bot', 'oauth2']]);
  });

  it("shows a client's settings and what Test confirmed, or that the server did not say", async () => {
    const user = userEvent.setup();
    const b = await unlocked([]);
    await b.addOauth2('ci-bot', { tags: [] }, client);
    await b.addOauth2('plain', { tags: [] }, { client_id: 'plain-app', client_secret: 'x', token_url: 'https://idp.example.org/token', scopes: [], auth: 'post' });
    render(Keys, { backend: b });
    await user.click(await screen.findByRole('button', { name: 'Open ci-bot' }));
    expect(await screen.findByTestId('detail-kind')).toHaveTextContent('OAuth2 client ci-bot');
    expect(screen.getByTestId('oauth2-client-id')).toHaveTextContent('ci-bot');
    expect(screen.getByTestId('oauth2-token-url')).toHaveTextContent('https://auth.example.com/oauth/token');
    expect(screen.getByTestId('oauth2-scopes')).toHaveTextContent('deploy:read');
    expect(screen.getByTestId('oauth2-auth')).toHaveTextContent('HTTP Basic (client_secret_basic)');
    expect(screen.getByTestId('oauth2-introspection-url')).toHaveTextContent('https://auth.example.com/oauth/introspect');
    expect(screen.getByRole('button', { name: 'Reveal the client secret' })).toBeInTheDocument();

    const until = '2026-05-01T12:05:00Z';
    const test = vi.spyOn(b, 'testKey').mockResolvedValueOnce({ identity: 'client ci-bot', expiration: until, scope: 'deploy:read' });
    await user.click(screen.getByTestId('detail-test'));
    await waitFor(() => expect(screen.getByTestId('detail-notice')).toHaveTextContent(
      `Works: client ci-bot · scope deploy:read · token until ${new Date(until).toLocaleTimeString()}`));
    test.mockResolvedValueOnce({ identity: 'client ci-bot', expiration: null, scope: null });
    await user.click(screen.getByTestId('detail-test'));
    await waitFor(() => expect(screen.getByTestId('detail-notice')).toHaveTextContent(/^Works: client ci-bot · expiry not stated by the server$/));
    expect(test).toHaveBeenCalledWith('ci-bot');

    // The other client: no scopes asked, secret in the body, no introspection endpoint.
    await user.click(screen.getByTestId('detail-back'));
    await user.click(await screen.findByRole('button', { name: 'Open plain' }));
    expect(await screen.findByTestId('detail-kind')).toHaveTextContent('OAuth2 client plain-app');
    expect(screen.getByTestId('oauth2-scopes')).toHaveTextContent('server default');
    expect(screen.getByTestId('oauth2-auth')).toHaveTextContent('In the request body (client_secret_post)');
    expect(screen.getByTestId('oauth2-introspection-url')).toHaveTextContent('none');
  });

  it('replaces the client secret with {kind: oauth2, client_secret}', async () => {
    const user = userEvent.setup();
    const b = await unlocked([]);
    await b.addOauth2('ci-bot', { tags: [] }, client);
    const rotate = vi.spyOn(b, 'rotateKey');
    render(Keys, { backend: b });
    await user.click(await screen.findByRole('button', { name: 'Open ci-bot' }));
    await user.click(await screen.findByTestId('rotate'));
    expect(screen.queryByTestId('rotate-id')).toBeNull();
    const field = screen.getByLabelText('New client secret');
    expect(field).toBe(screen.getByTestId('rotate-secret'));
    expect(field).toHaveAttribute('type', 'password');
    await user.type(field, 'cs-second');
    await user.click(screen.getByTestId('rotate-save'));
    expect(await screen.findByTestId('detail-notice')).toHaveTextContent(
      'New client secret stored. Revoke the old one at the provider once your tools work.');
    expect(rotate).toHaveBeenCalledWith('ci-bot', { kind: 'oauth2', client_secret: 'cs-second' });
    expect(screen.queryByTestId('rotate-form')).toBeNull();
    await waitFor(() => expect(screen.getByTestId('detail-rotated')).not.toHaveTextContent('never'));
    await user.click(screen.getByTestId('reveal'));
    expect(await screen.findByTestId('revealed')).toHaveTextContent('cs-second');
  });
});

describe('AWS keys in the detail', () => {
  async function awsKey(extra: Partial<KeyRow> = {}) {
    const b = await unlocked([]);
    await b.addAws('deploy', { tags: [] }, { access_key_id: 'AKIAOLDEXAMPLE01', secret_access_key: 'x', session_duration_secs: 3600 } as never);
    Object.assign(b.keys[0], extra);
    return b;
  }

  it('rotates at AWS in one click with the grace chosen, and says what became of the old key', async () => {
    const user = userEvent.setup();
    const b = await awsKey();
    const rotate = vi.spyOn(b, 'rotateAws');
    render(Keys, { backend: b });
    await user.click(await screen.findByRole('button', { name: 'Open deploy' }));
    await user.click(await screen.findByTestId('rotate-aws'));
    expect(screen.getByTestId('rotate-aws-grace')).toHaveValue('86400');
    await user.selectOptions(screen.getByTestId('rotate-aws-grace'), '0');
    await user.click(screen.getByTestId('rotate-aws-go'));
    expect(await screen.findByTestId('detail-notice')).toHaveTextContent(
      /^Rotated at AWS \(IAM user deployer\): AKIANEW\d{6} is stored and works\. The old key AKIAOLDEXAMPLE01 is deleted\.$/);
    expect(rotate).toHaveBeenCalledWith('deploy', 0);
    expect(screen.queryByTestId('rotate-aws-form')).toBeNull();
    await waitFor(() => expect(screen.getByTestId('detail-rotated')).not.toHaveTextContent('never'));
    const actions = screen.getAllByTestId('history-row').map((r) => r.getAttribute('data-action'));
    expect(actions[0]).toBe('rotate.aws');
  });

  it("keeps the form open with the agent's one line when IAM refuses", async () => {
    const user = userEvent.setup();
    const b = await awsKey();
    const limit = "cannot rotate 'deploy': IAM allows two access keys per user and 'deployer' has two, AKIAOLDEXAMPLE01 (the one 'deploy' holds) and AKIASTALEEXAMPLE (active, created 2026-11-01), which Keyward does not hold. If nothing uses AKIASTALEEXAMPLE any more, delete it (aws iam delete-access-key --user-name deployer --access-key-id AKIASTALEEXAMPLE) and rotate again";
    vi.spyOn(b, 'rotateAws').mockRejectedValue(new BackendError('upstream', limit));
    render(Keys, { backend: b });
    await user.click(await screen.findByRole('button', { name: 'Open deploy' }));
    await user.click(await screen.findByTestId('rotate-aws'));
    await user.click(screen.getByTestId('rotate-aws-go'));
    expect(await screen.findByTestId('rotate-aws-error')).toHaveTextContent(limit);
    expect(screen.getByTestId('rotate-aws-go')).toBeEnabled();
    expect(screen.getByTestId('detail-rotated')).toHaveTextContent('never');
  });

  it("shows what AWS saw of the key, and offers no rotation at AWS for other kinds", async () => {
    const user = userEvent.setup();
    const threeDays = new Date(Date.now() - 3 * 86400e3 - 60e3).toISOString();
    const b = await awsKey({
      provider_use: { used: threeDays, service: 's3', region: 'eu-west-1', checked: new Date().toISOString(), error: null },
    });
    await b.addStatic('gh', { tags: [] }, 'ghp_x');
    render(Keys, { backend: b });
    await user.click(await screen.findByRole('button', { name: 'Open deploy' }));
    expect(await screen.findByTestId('detail-provider-use')).toHaveTextContent('3 days ago (s3, eu-west-1)');
    await user.click(screen.getByTestId('detail-back'));

    b.keys[0].provider_use = { used: null, service: null, region: null, checked: new Date().toISOString(), error: 'IAM refused: AccessDenied' };
    await user.click(await screen.findByRole('button', { name: 'Open deploy' }));
    expect(await screen.findByTestId('detail-provider-use')).toHaveTextContent('not known; asking failed: IAM refused: AccessDenied');
    await user.click(screen.getByTestId('detail-back'));

    await user.click(await screen.findByRole('button', { name: 'Open gh' }));
    expect(await screen.findByTestId('key-detail')).toBeInTheDocument();
    await waitFor(() => expect(screen.getByTestId('detail-rotated')).toBeInTheDocument());
    expect(screen.queryByTestId('detail-provider-use')).toBeNull();
    expect(screen.queryByTestId('rotate-aws')).toBeNull();
  });

  it("adds an Alibaba Cloud key with its role, and its detail shows each tool's line with a Copy button", async () => {
    const user = userEvent.setup();
    const b = await unlocked([]);
    const add = vi.spyOn(b, 'addAliyun');
    render(Keys, { backend: b });
    await user.click(await screen.findByTestId('add-key'));
    await user.selectOptions(screen.getByTestId('add-kind'), 'aliyun');
    expect(screen.getByTestId('add-access-key-id')).toHaveAttribute('placeholder', 'LTAI…');
    expect(screen.getByLabelText('AccessKey secret')).toHaveAttribute('type', 'password');
    expect(screen.getByTestId('add-key-form')).toHaveTextContent('Without a role, tools get the AccessKey itself.');
    await user.type(screen.getByTestId('add-name'), 'prod');
    await user.type(screen.getByTestId('add-access-key-id'), ' LTAI5tKwTestAliyun0001 ');
    await user.type(screen.getByTestId('add-secret'), 'kwAliyunCanary0123456789abcdef');
    await user.type(screen.getByTestId('add-role-arn'), 'acs:ram::1234567890123456:role/deploy');
    expect(screen.getByTestId('add-key-form')).toHaveTextContent('Tools get STS tokens for this role.');
    await user.type(screen.getByTestId('add-region'), 'cn-hangzhou');
    await user.click(screen.getByTestId('add-submit'));
    await waitFor(() => expect(screen.queryByTestId('add-key-form')).toBeNull());
    expect(add).toHaveBeenCalledWith('prod', { tags: [] }, {
      access_key_id: 'LTAI5tKwTestAliyun0001', access_key_secret: 'kwAliyunCanary0123456789abcdef',
      role_arn: 'acs:ram::1234567890123456:role/deploy', region: 'cn-hangzhou', session_duration_secs: 3600,
      sts_endpoint: undefined,
    });
    const row = (await screen.findByRole('button', { name: 'Open prod' })).closest('[data-testid="key-row"]');
    expect(row).toHaveTextContent(/Alibaba Cloud/);
    expect(screen.getByRole('button', { name: 'Test prod' })).toBeInTheDocument();

    vi.spyOn(b, 'keyDetail').mockImplementation(async (name) => ({
      key: { ...b.keys.find((k) => k.name === name)! }, history: [],
      uses: { lease: null, bindings: [] },
      usage: [
        { tool: 'aliyun', line: 'keyward setup aliyun prod', note: 'an External profile in ~/.aliyun/config.json' },
        { tool: 'exec', line: 'keyward exec aliyun:prod -- COMMAND', note: 'an STS token in ALIBABA_CLOUD_ACCESS_KEY_ID' },
      ],
    }));
    await user.click(screen.getByRole('button', { name: 'Open prod' }));
    expect(await screen.findByTestId('detail-kind')).toHaveTextContent('Alibaba Cloud AccessKey LTAI…0001');
    const lines = await screen.findAllByTestId('usage-line');
    expect(lines.map((l) => l.querySelector('code')?.textContent)).toEqual(['keyward setup aliyun prod', 'keyward exec aliyun:prod -- COMMAND']);
    expect(screen.queryByTestId('usage-lease')).toBeNull();
    await user.click(screen.getByRole('button', { name: 'Copy the exec line' }));
    await waitFor(() => expect(b.usageCopied).toEqual([['prod', 1]]));
    expect(lines[1]).toHaveTextContent('Copied');
    expect(b.copied).toEqual([]);
  });

  it("says whether a static key may be leased and where it is bound, and what is unknown while locked", async () => {
    const user = userEvent.setup();
    const b = await unlocked([]);
    await b.addStatic('gh', { tags: [] }, 'ghp_x');
    const detail = vi.spyOn(b, 'keyDetail').mockImplementation(async (name) => ({
      key: { ...b.keys.find((k) => k.name === name)! }, history: [],
      uses: { lease: 'env', bindings: [{ tool: 'git', host: 'github.com', key: 'gh', username: 'x-access-token' }] },
      usage: [{ tool: 'git', line: 'keyward setup git github.com --key gh', note: 'bound: git gets it for github.com' }],
    }));
    render(Keys, { backend: b });
    await user.click(await screen.findByRole('button', { name: 'Open gh' }));
    expect(await screen.findByTestId('usage-lease')).toHaveTextContent('Leases allowed (env)');
    expect(screen.getByTestId('usage-bindings')).toHaveTextContent('git gets it for github.com as x-access-token');
    detail.mockImplementation(async (name) => ({
      key: { ...b.keys.find((k) => k.name === name)! }, history: [], uses: null,
      usage: [{ tool: 'exec', line: 'keyward exec static:gh=VAR -- COMMAND', note: 'once leases are allowed' }],
    }));
    await user.click(screen.getByTestId('detail-back'));
    await user.click(await screen.findByRole('button', { name: 'Open gh' }));
    expect(await screen.findByTestId('usage-locked')).toHaveTextContent('Unlock to see');
  });
});
