import { screen, waitFor } from '@testing-library/svelte';
import { render } from '../../test-render';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import ApprovalDialog from './ApprovalDialog.svelte';
import Clients from './Clients.svelte';
import type { ApprovalInfo } from '../../lib/backend';
import { TestBackend } from '../../lib/backend/test';

const request: ApprovalInfo = {
  id: 'a1', client: { exe: '/usr/bin/python3.11', script: '/usr/bin/aws' },
  chain: [
    { pid: 30, exe: '/usr/local/bin/keyward' },
    { pid: 29, exe: '/usr/bin/python3.11', script: '/usr/bin/aws' },
    { pid: 10, exe: '/usr/bin/bash' },
  ],
  profile: 'prod', kind: 'aws', ttl_secs: 3600, expires_in_secs: 60, standing_needs_code: false,
};

describe('approval dialog', () => {
  it('names the program, its parents, the profile and the lifetime', () => {
    const backend = new TestBackend();
    backend.pending = [request];
    render(ApprovalDialog, { backend, request, ondecided: () => {} });
    expect(screen.getByTestId('approval-program')).toHaveTextContent('/usr/bin/aws (python3.11)');
    expect(screen.getByTestId('approval-profile')).toHaveTextContent('prod');
    expect(screen.getByText(/valid 1 h/)).toBeInTheDocument();
    expect(screen.getByTestId('approval-chain').querySelectorAll('li')).toHaveLength(3);
  });

  it('says an OAuth2 token lives as long as the server issues it', () => {
    const backend = new TestBackend();
    const oauth: ApprovalInfo = { ...request, profile: 'ci', kind: 'oauth2', ttl_secs: null };
    backend.pending = [oauth];
    render(ApprovalDialog, { backend, request: oauth, ondecided: () => {} });
    expect(screen.getByTestId('approval-dialog')).toHaveTextContent(
      'asks for an access token of OAuth2 key ci, valid as long as the server issues it.');
    expect(screen.queryByText(/valid 1 h/)).not.toBeInTheDocument();
  });

  it('says an Alibaba Cloud key gives an STS token, or its AccessKey itself without a role', () => {
    const backend = new TestBackend();
    const sts: ApprovalInfo = { ...request, profile: 'prod', kind: 'aliyun', ttl_secs: 3600 };
    backend.pending = [sts];
    const first = render(ApprovalDialog, { backend, request: sts, ondecided: () => {} });
    expect(screen.getByTestId('approval-dialog')).toHaveTextContent('asks for an STS token of Alibaba Cloud key prod, valid 1 h.');
    first.unmount();
    const ak: ApprovalInfo = { ...sts, ttl_secs: null };
    render(ApprovalDialog, { backend, request: ak, ondecided: () => {} });
    expect(screen.getByTestId('approval-dialog')).toHaveTextContent('Alibaba Cloud key prod itself: its AccessKey (the key has no RAM role).');
  });

  it('says a lease is the key itself, and names the command keyward exec is to start', () => {
    const backend = new TestBackend();
    const lease: ApprovalInfo = {
      ...request, profile: 'gh', kind: 'static',
      client: { exe: '/usr/bin/python3.11', script: '/srv/deploy.py' },
      chain: [
        { pid: 0, exe: '/usr/bin/python3.11', script: '/srv/deploy.py' },
        { pid: 30, exe: '/usr/local/bin/keyward' },
        { pid: 10, exe: '/usr/bin/bash' },
      ],
    };
    backend.pending = [lease];
    render(ApprovalDialog, { backend, request: lease, ondecided: () => {} });
    expect(screen.getByTestId('approval-dialog')).toHaveTextContent(
      'asks for a lease of static key gh: its value itself, counted out for 1 h.');
    const rows = screen.getByTestId('approval-chain').querySelectorAll('li');
    expect(rows[0]).toHaveTextContent('/srv/deploy.py to be started by keyward exec');
    expect(rows[1]).toHaveTextContent('pid 30');
  });

  it.each([
    ['approve-hours', { hours: 1 }],
    ['approve-once', 'once'],
    ['approve-until-lock', 'until_lock'],
    ['approve-deny', 'deny'],
  ])('%s sends %j', async (button, decision) => {
    const user = userEvent.setup();
    const backend = new TestBackend();
    backend.pending = [request];
    const ondecided = vi.fn();
    render(ApprovalDialog, { backend, request, ondecided });
    await user.click(screen.getByTestId(button));
    expect(backend.decisions).toEqual([{ id: 'a1', decision }]);
    expect(ondecided).toHaveBeenCalledOnce();
  });

  it('offers only once or deny to a shell running code from its command line', async () => {
    const user = userEvent.setup();
    const backend = new TestBackend();
    const sh: ApprovalInfo = {
      ...request, client: { exe: '/usr/bin/dash', unvouched: 'it runs code given on its command line' },
    };
    backend.pending = [sh];
    render(ApprovalDialog, { backend, request: sh, ondecided: () => {} });
    expect(screen.getByTestId('approval-once-only')).toHaveTextContent(
      'Only this request can be allowed: it runs code given on its command line');
    expect(screen.queryByTestId('approve-hours')).not.toBeInTheDocument();
    expect(screen.queryByTestId('approve-until-lock')).not.toBeInTheDocument();
    await user.click(screen.getByTestId('approve-once'));
    expect(backend.decisions).toEqual([{ id: 'a1', decision: 'once' }]);
  });

  it('allows for the chosen number of hours', async () => {
    const user = userEvent.setup();
    const backend = new TestBackend();
    backend.pending = [request];
    render(ApprovalDialog, { backend, request, ondecided: () => {} });
    await user.selectOptions(screen.getByTestId('approve-hours-choice'), '8');
    await user.click(screen.getByTestId('approve-hours'));
    expect(backend.decisions[0].decision).toEqual({ hours: 8 });
  });
});

describe('approval dialog with the "standing grants need a code" setting on', () => {
  it('allows once without a code; hours and until lock wait for one, a wrong one is refused', async () => {
    const user = userEvent.setup();
    const backend = new TestBackend();
    backend.grantsNeedCode = true;
    const asked: ApprovalInfo = { ...request, standing_needs_code: true };
    backend.pending = [asked];
    const ondecided = vi.fn();
    render(ApprovalDialog, { backend, request: asked, ondecided });
    expect(screen.getByLabelText(/Authenticator code — needed to allow it for hours or until lock/)).toBeInTheDocument();
    expect(screen.getByTestId('approve-hours')).toBeDisabled();
    expect(screen.getByTestId('approve-until-lock')).toBeDisabled();
    expect(screen.getByTestId('approve-once')).toBeEnabled();

    await user.type(screen.getByTestId('approval-code'), '000000');
    await user.click(screen.getByTestId('approve-until-lock'));
    expect(await screen.findByTestId('approval-error')).toHaveTextContent('does not match your authenticator app');
    expect(ondecided).not.toHaveBeenCalled();
    expect(backend.grantList).toEqual([]);

    await user.type(screen.getByTestId('approval-code'), backend.validCode);
    await user.click(screen.getByTestId('approve-until-lock'));
    expect(ondecided).toHaveBeenCalledOnce();
    expect(backend.grantList).toHaveLength(1);
  });
});

describe('clients', () => {
  it('lists the leases still out, with how they went and until when', async () => {
    const backend = new TestBackend();
    await backend.initVault('orbit-maple-quartz-lantern-7', 'S', backend.validCode);
    await backend.unlock('orbit-maple-quartz-lantern-7', { kind: 'totp', code: backend.validCode });
    backend.leasesOut = [
      { key: 'gh', client: '/usr/bin/git', via: 'git', issued: '2026-12-04T11:30:00Z', expires_at: '2026-12-04T12:30:00Z' },
      { key: 'db', client: '/usr/bin/python3 /srv/migrate.py', via: 'exec-fd', issued: '2026-12-04T11:20:00Z', expires_at: '2026-12-04T12:20:00Z' },
    ];
    render(Clients, { backend });
    const rows = await screen.findAllByTestId('lease-row');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent("gh/usr/bin/gitgit's helper");
    expect(rows[1]).toHaveTextContent('a file descriptor (keyward exec)');
    expect(screen.getByTestId('leases').previousElementSibling).toHaveTextContent('A lease cannot be taken back');
  });

  it('lists grants and revokes one', async () => {
    const user = userEvent.setup();
    const backend = new TestBackend();
    backend.pending = [request];
    await backend.decideApproval('a1', 'until_lock');
    render(Clients, { backend });
    expect(await screen.findByTestId('grant-row')).toHaveTextContent('/usr/bin/aws (python3.11)');
    expect(screen.getByTestId('grant-row')).toHaveTextContent('the vault locks');
    await user.click(screen.getByRole('button', { name: /Revoke prod/ }));
    await waitFor(() => expect(screen.getByTestId('clients-empty')).toBeInTheDocument());
  });
});
