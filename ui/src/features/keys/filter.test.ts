import { describe, expect, it } from 'vitest';
import type { KeyRow } from '../../lib/backend';
import { keyRow } from '../../lib/backend/fixtures';
import { filterKeys, searchIndex } from './filter';

const key = keyRow;

const keys = [
  key('Deploy-Bot', { kind: 'aws', tags: ['CI', 'prod'], owner: 'Platform' }),
  key('github', { tags: ['ci'], purpose: 'Release uploads' }),
  key('backup', { owner: 'data', state: 'overdue' }),
];
const none = { text: '', kind: '', tag: '', state: '' } as const;
const names = (ks: KeyRow[]) => ks.map((k) => k.name);

describe('filterKeys', () => {
  it('looks in name, tags, owner and purpose, whatever the case, with or without the index', () => {
    const index = searchIndex(keys);
    for (const [text, want] of [
      ['deploy', ['Deploy-Bot']], ['CI', ['Deploy-Bot', 'github']], ['platform', ['Deploy-Bot']],
      ['UPLOADS', ['github']], ['  data ', ['backup']], ['nothing', []], ['', ['Deploy-Bot', 'github', 'backup']],
    ] as const) {
      expect(names(filterKeys(keys, { ...none, text }))).toEqual(want);
      expect(names(filterKeys(keys, { ...none, text }, index))).toEqual(want);
    }
  });

  it('combines the text with kind, tag and state', () => {
    expect(names(filterKeys(keys, { ...none, text: 'ci', kind: 'aws' }))).toEqual(['Deploy-Bot']);
    expect(names(filterKeys(keys, { ...none, tag: 'ci' }))).toEqual(['github']);
    expect(names(filterKeys(keys, { ...none, state: 'overdue' }))).toEqual(['backup']);
  });

  it('never matches across two fields, and ignores an index made for another list', () => {
    // In the index the fields are one a line: "deploy-bot\nci\nprod\nplatform\n".
    expect(filterKeys(keys, { ...none, text: 'bot\nci' }, searchIndex(keys))).toEqual([]);
    expect(names(filterKeys(keys, { ...none, text: 'backup' }, searchIndex(keys.slice(0, 2))))).toEqual(['backup']);
  });
});
