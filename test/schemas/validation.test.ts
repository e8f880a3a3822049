import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, isEncoreError } from '../../core/errors.ts';
import { MAX_CLOCK_SKEW_MS, MAX_POSITION_MS, validateListeningEvent } from '../../schemas/validation.ts';
import { listeningEvent } from '../helpers/events.ts';

const now = Date.UTC(2026, 10, 23, 12, 0, 0);

function rejected(...patterns: RegExp[]) {
  return (error: unknown) => {
    assert.ok(isEncoreError(error, ErrorCodes.DESERIALIZATION_FAILED));
    assert.equal((error as { reason?: string }).reason, 'INVALID_VALUE');
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  };
}

describe('validateListeningEvent', () => {
  it('accepts plausible events of every type', () => {
    for (const event of [
      listeningEvent({ timestamp: now }),
      listeningEvent({ type: 'SEEK', positionMs: 1_000, seekToMs: 60_000, timestamp: now }),
      listeningEvent({ type: 'SEARCH', songId: null, positionMs: null, searchQuery: 'jazz', timestamp: now }),
      listeningEvent({ type: 'EXIT', songId: null, positionMs: null, timestamp: now + MAX_CLOCK_SKEW_MS }),
    ]) {
      assert.equal(validateListeningEvent(event, now), event);
    }
  });

  it('rejects values that decode but cannot be true, listing every problem', () => {
    assert.throws(
      () => validateListeningEvent(listeningEvent({ positionMs: -1, seekToMs: -2, timestamp: now }), now),
      rejected(/positionMs -1 is negative/, /seekToMs -2 is negative/),
    );
    assert.throws(
      () =>
        validateListeningEvent(
          listeningEvent({
            type: 'SEEK',
            positionMs: MAX_POSITION_MS + 1,
            seekToMs: 2 ** 31 - 1,
            timestamp: now,
          }),
          now,
        ),
      rejected(/positionMs 86400001 is more than a day/, /seekToMs 2147483647 is more than a day/),
    );
    assert.throws(
      () => validateListeningEvent(listeningEvent({ timestamp: now + MAX_CLOCK_SKEW_MS + 1 }), now),
      rejected(/more than a day in the future/),
    );
    assert.throws(
      () => validateListeningEvent(listeningEvent({ timestamp: 5 }), now),
      rejected(/before 2000/),
    );
    assert.throws(
      () => validateListeningEvent(listeningEvent({ eventId: ' ', userId: '', timestamp: now }), now),
      rejected(/eventId is empty/, /userId is empty/),
    );
    assert.throws(
      () => validateListeningEvent(listeningEvent({ type: 'SKIP', songId: null, timestamp: now }), now),
      rejected(/SKIP without songId/),
    );
    assert.throws(
      () => validateListeningEvent(listeningEvent({ type: 'SEEK', seekToMs: null, timestamp: now }), now),
      rejected(/SEEK without seekToMs/),
    );
    assert.throws(
      () => validateListeningEvent(listeningEvent({ type: 'UNKNOWN', timestamp: now }), now),
      rejected(/type is UNKNOWN/),
    );
    assert.throws(
      () =>
        validateListeningEvent(
          listeningEvent({ timestamp: now, context: { timezoneOffsetMinutes: 900 } }),
          now,
        ),
      rejected(/outside ±14 h/),
    );
  });
});
