package queue

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/internal/redistest"
)

func TestCheckDurable(t *testing.T) {
	rs := redistest.Start(t)
	c := rs.Client()
	ctx := context.Background()
	if err := CheckDurable(ctx, c); err != nil {
		t.Fatalf("appendonly yes: %v", err)
	}
	if err := c.ConfigSet(ctx, "appendonly", "no").Err(); err != nil {
		t.Fatal(err)
	}
	err := CheckDurable(ctx, c)
	if !errors.Is(err, ErrNotDurable) || !strings.Contains(err.Error(), "appendonly yes") {
		t.Fatalf("appendonly no: %v", err)
	}
}

// TestRedisTTLAndLost checks that a finished job's keys get the result TTL
// and that an id whose keys are gone is reported lost, not unknown.
func TestRedisTTLAndLost(t *testing.T) {
	rs := redistest.Start(t)
	c := rs.Client()
	key, _ := NewIDKey()
	st := NewRedis(c, RedisConfig{ResultTTL: time.Hour, IDKey: key, Block: 10 * time.Millisecond})
	ctx := context.Background()
	id, err := st.Submit(ctx, api.JobKindScore, "k", items(2))
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := st.Claim(ctx, "c", 2)
	if err != nil || len(tasks) != 2 {
		t.Fatalf("claim: %v %v", tasks, err)
	}
	if err := st.Complete(ctx, tasks[0], Outcome{Result: json.RawMessage(`1`)}); err != nil {
		t.Fatal(err)
	}
	if ttl := c.TTL(ctx, st.jobKey(id)).Val(); ttl >= 0 {
		t.Fatalf("unfinished job has TTL %v", ttl)
	}
	if err := st.Complete(ctx, tasks[1], Outcome{Err: "bad"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{st.jobKey(id), st.resultsKey(id), st.errorsKey(id)} {
		if ttl := c.TTL(ctx, k).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
			t.Fatalf("%s TTL %v, want 1h", k, ttl)
		}
	}
	// Redis loses the job (a crash without appendonly, or the TTL).
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var lost *LostError
	if _, err := st.Status(ctx, id); !errors.As(err, &lost) || !strings.Contains(lost.Why, "appendonly") {
		t.Fatalf("lost job: %v", err)
	}
	other := NewRedis(c, RedisConfig{})
	if _, err := other.Status(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("id under another key: %v, want ErrNotFound", err)
	}
}

// TestRedisDownIsUnavailable checks that a stopped Redis gives errors that
// match ErrUnavailable, and a stored job's results come back after restart.
func TestRedisDownIsUnavailable(t *testing.T) {
	rs := redistest.Start(t)
	st := NewRedis(rs.Client(), RedisConfig{Block: 10 * time.Millisecond})
	ctx := context.Background()
	id, err := st.Submit(ctx, api.JobKindScore, "k", items(1))
	if err != nil {
		t.Fatal(err)
	}
	rs.Stop()
	checks := map[string]error{
		"ping":    st.Ping(ctx),
		"status":  func() error { _, err := st.Status(ctx, id); return err }(),
		"pending": func() error { _, err := st.Pending(ctx); return err }(),
		"submit":  func() error { _, err := st.Submit(ctx, api.JobKindScore, "k", items(1)); return err }(),
	}
	for name, err := range checks {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", name, err)
		}
	}
	rs.Restart()
	if s, err := st.Status(ctx, id); err != nil || s.Total != 1 || s.Owner != "k" {
		t.Fatalf("after restart: %+v %v", s, err)
	}
}
