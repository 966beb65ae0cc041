import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { REDACTED, SecretRegistry, createLogger, formatText } from '../../src/log.js';

function capture(format: 'json' | 'text', secrets: SecretRegistry) {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', format, secrets, write: (line) => lines.push(line) });
  return { log, lines };
}

describe('logging', () => {
  test('a registered secret is redacted wherever it appears: message, fields, nested values, errors, keys', () => {
    const secrets = new SecretRegistry();
    secrets.add('tok-3f9a"quoted\\slash', 'hunter2');
    const { log, lines } = capture('json', secrets);
    log.info(
      { header: 'Bearer tok-3f9a"quoted\\slash', nested: { list: ['x hunter2 y'] }, hunter2: 1 },
      'sending tok-3f9a"quoted\\slash',
    );
    log.error({ err: new Error('connect failed for redis://:hunter2@redis:6379') }, 'boom');
    const output = lines.join('');
    assert.ok(!output.includes('hunter2'));
    assert.ok(!output.includes('tok-3f9a'));
    const first = JSON.parse(lines[0]!);
    assert.equal(first.msg, `sending ${REDACTED}`);
    assert.equal(first.header, `Bearer ${REDACTED}`);
    assert.deepEqual(first.nested, { list: [`x ${REDACTED} y`] });
    assert.match(JSON.parse(lines[1]!).err.message, /redis:\/\/:\[REDACTED\]@redis:6379/);
  });

  test('JSON lines carry time, level and msg; child bindings such as scan_group_id are on every line', () => {
    const { log, lines } = capture('json', new SecretRegistry());
    const child = log.child({ scan_group_id: 'g-1' });
    child.info({ namespace: 'prod' }, 'delivered');
    child.debug('detail');
    for (const line of lines) {
      const record = JSON.parse(line);
      assert.equal(record.scan_group_id, 'g-1');
      assert.match(record.time, /Z$/);
    }
    assert.equal(JSON.parse(lines[0]!).level, 'info');
  });

  test('text format is readable', () => {
    assert.equal(
      formatText({
        time: '2026-11-27T06:00:00.000Z',
        level: 'warn',
        msg: 'image scan failed',
        image: 'docker.io/library/nginx:1',
        error: 'two words',
        count: 3,
      }),
      '2026-11-27T06:00:00.000Z WARN  image scan failed image=docker.io/library/nginx:1 error="two words" count=3\n',
    );
    const { log, lines } = capture('text', new SecretRegistry());
    log.info({ table: 'A  B\n1  2' }, 'summary');
    assert.match(lines[0]!, / INFO {2}summary\nA {2}B\n1 {2}2\n$/);
  });
});
