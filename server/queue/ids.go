package queue

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// Job ids are 32 hex digits: 4 bytes of creation time (Unix seconds), 8
// random bytes and a 4-byte HMAC-SHA256 tag of the first 12 under the
// store's id key. A store that has no record of an id carrying a valid tag
// knows that it issued the id, so it reports the job as lost (ErrLost)
// rather than unknown (ErrNotFound).
const idLen = 16

// idKeyLen is the length of a generated id key in bytes.
const idKeyLen = 32

// NewIDKey returns a random key for job id tags.
func NewIDKey() ([]byte, error) {
	k := make([]byte, idKeyLen)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("queue: id key: %w", err)
	}
	return k, nil
}

// newID returns a fresh tagged job id created at now.
func newID(key []byte, now time.Time) (string, error) {
	var b [idLen]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.Unix()))
	if _, err := rand.Read(b[4:12]); err != nil {
		return "", fmt.Errorf("queue: job id: %w", err)
	}
	copy(b[12:], idTag(key, b[:12]))
	return hex.EncodeToString(b[:]), nil
}

func idTag(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)[:idLen-12]
}

// issued reports whether id carries a valid tag under key, and when it was
// created.
func issued(key []byte, id string) (time.Time, bool) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != idLen || len(key) == 0 {
		return time.Time{}, false
	}
	if !hmac.Equal(b[12:], idTag(key, b[:12])) {
		return time.Time{}, false
	}
	return time.Unix(int64(binary.BigEndian.Uint32(b[:4])), 0).UTC(), true
}

// missing returns the error for an id the store holds no record of:
// ErrLost when key issued it, else ErrNotFound. why says what may have
// happened to it.
func missing(key []byte, id, why string) error {
	created, ok := issued(key, id)
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return &LostError{ID: id, Created: created, Why: why}
}
