import { describe, expect, it } from 'vitest';
import { attempt, messageOf } from './errors';
import { BackendError } from './backend/types';

describe('errors', () => {
  it('gives the agent\'s one line for a failed call and nothing for one that worked', async () => {
    expect(await attempt(async () => {})).toBe('');
    expect(await attempt(async () => { throw new BackendError('locked', 'the vault is locked'); })).toBe('the vault is locked');
    expect(messageOf('plain')).toBe('plain');
  });
});
