package cache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cache stores response bodies by key.
type Cache interface {
	// Get returns the value and true on a hit.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores val for ttl (0 means no expiry).
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
}

// Off is a Cache that stores nothing and never hits: every request
// reaches the model (serve --response-cache=false, and the bench, which
// measures the model path on a mix that repeats).
type Off struct{}

// Get never hits.
func (Off) Get(context.Context, string) ([]byte, bool, error) { return nil, false, nil }

// Set discards the value.
func (Off) Set(context.Context, string, []byte, time.Duration) error { return nil }

// Key derives a cache key from the model version, the image hash and any
// JSON-encodable request parameters.
func Key(modelVersion, imageHash string, params ...any) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", modelVersion, imageHash)
	enc := json.NewEncoder(h)
	for _, p := range params {
		_ = enc.Encode(p) // hash.Hash never fails; unencodable params hash as nothing
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Memory is an in-process LRU cache; safe for concurrent use.
type Memory struct {
	mu    sync.Mutex               // guards ll and items
	max   int                      // capacity in entries
	ll    *list.List               // most recently used at the front
	items map[string]*list.Element // key → element holding *entry
}

// entry is one cached value.
type entry struct {
	key     string
	val     []byte
	expires time.Time // zero: never
}

// NewMemory returns an LRU holding up to maxEntries values (default 4096
// when maxEntries <= 0).
func NewMemory(maxEntries int) *Memory {
	if maxEntries <= 0 {
		maxEntries = 4096
	}
	return &Memory{max: maxEntries, ll: list.New(), items: map[string]*list.Element{}}
}

// Get implements Cache.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.items[key]
	if !ok {
		return nil, false, nil
	}
	e := el.Value.(*entry)
	if !e.expires.IsZero() && time.Now().After(e.expires) {
		m.ll.Remove(el)
		delete(m.items, key)
		return nil, false, nil
	}
	m.ll.MoveToFront(el)
	return e.val, true, nil
}

// Set implements Cache.
func (m *Memory) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var exp time.Time
	if ttl > 0 {
		exp = time.Now().Add(ttl)
	}
	if el, ok := m.items[key]; ok {
		el.Value = &entry{key: key, val: val, expires: exp}
		m.ll.MoveToFront(el)
		return nil
	}
	m.items[key] = m.ll.PushFront(&entry{key: key, val: val, expires: exp})
	for m.ll.Len() > m.max {
		old := m.ll.Back()
		m.ll.Remove(old)
		delete(m.items, old.Value.(*entry).key)
	}
	return nil
}

// Len returns the number of entries.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ll.Len()
}

// Redis is a Cache on a Redis server, shared by every replica using the
// same prefix.
type Redis struct {
	client redis.UniversalClient // connection pool, owned by the caller
	prefix string                // key namespace, e.g. "medgr2:cache:"
}

// NewRedis returns a Redis cache; prefix defaults to "medgr2:cache:".
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	if prefix == "" {
		prefix = "medgr2:cache:"
	}
	return &Redis{client: client, prefix: prefix}
}

// Get implements Cache.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	b, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cache: redis get: %w", err)
	}
	return b, true, nil
}

// Set implements Cache.
func (r *Redis) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := r.client.Set(ctx, r.prefix+key, val, ttl).Err(); err != nil {
		return fmt.Errorf("cache: redis set: %w", err)
	}
	return nil
}
