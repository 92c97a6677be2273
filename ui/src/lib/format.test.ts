import { describe, expect, it } from 'vitest';
import { kindLabel, recordClient, testedText } from './format';

describe('testedText', () => {
  const until = '2026-05-01T14:05:00Z';
  const time = new Date(until).toLocaleTimeString();

  it('names the AWS identity and the session end, and leaves out an end the agent did not give', () => {
    const arn = 'arn:aws:sts::123456789012:assumed-role/deploy/keyward-prod';
    expect(testedText('aws', { identity: arn, expiration: until, scope: null })).toBe(`Works: ${arn}, session until ${time}`);
    expect(testedText('aws', { identity: arn, expiration: null, scope: null })).toBe(`Works: ${arn}`);
    expect(testedText('aws', { identity: arn, expiration: 'soon', scope: null })).toBe(`Works: ${arn}`);
  });

  it('names the OAuth2 client, the granted scope and the token end, or says the server did not', () => {
    expect(testedText('oauth2', { identity: 'client ci-bot', expiration: until, scope: 'deploy:read repo' }))
      .toBe(`Works: client ci-bot · scope deploy:read repo · token until ${time}`);
    expect(testedText('oauth2', { identity: 'client ci-bot', expiration: null, scope: null }))
      .toBe('Works: client ci-bot · expiry not stated by the server');
    expect(testedText('oauth2', { identity: 'client ci-bot', expiration: until, scope: null }))
      .toBe(`Works: client ci-bot · token until ${time}`);
  });

  it('has a label for every kind', () => {
    expect(kindLabel).toEqual({ aws: 'AWS', static: 'Token', oauth2: 'OAuth2', aliyun: 'Alibaba Cloud' });
  });
});

describe('recordClient', () => {
  it('names the tool behind a keyward command, and the window or program itself otherwise', () => {
    const viaCli = { chain: [{ pid: 3, exe: '/usr/bin/keyward' }, { pid: 2, exe: '/usr/bin/python3', script: '/usr/bin/aws' }, { pid: 1, exe: '/usr/bin/bash' }] };
    expect(recordClient(viaCli)).toEqual({ exe: '/usr/bin/python3', script: '/usr/bin/aws' });
    const window = { chain: [{ pid: 2, exe: '/usr/bin/keyward-desktop' }, { pid: 1, exe: '/usr/bin/WebKitWebDriver' }] };
    expect(recordClient(window)).toEqual({ exe: '/usr/bin/keyward-desktop' });
    expect(recordClient({ chain: [] })).toBeNull();
  });
});
