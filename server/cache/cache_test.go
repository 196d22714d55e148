package cache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server/internal/redistest"
)

func TestKeyDependsOnEveryPart(t *testing.T) {
	base := Key("v1", "img", "vqa", "q", []string{"a", "b"})
	for name, k := range map[string]string{
		"version": Key("v2", "img", "vqa", "q", []string{"a", "b"}),
		"image":   Key("v1", "img2", "vqa", "q", []string{"a", "b"}),
		"params":  Key("v1", "img", "vqa", "q", []string{"a", "c"}),
	} {
		if k == base {
			t.Errorf("changing %s kept the key", name)
		}
	}
	if base != Key("v1", "img", "vqa", "q", []string{"a", "b"}) {
		t.Error("key not stable")
	}
}

func TestCaches(t *testing.T) {
	rs := redistest.Start(t)
	impls := []struct {
		name string
		c    Cache
	}{
		{"memory", NewMemory(2)},
		{"redis", NewRedis(rs.Client(), "test:")},
	}
	ctx := context.Background()
	for _, tc := range impls {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok, err := tc.c.Get(ctx, "missing"); ok || err != nil {
				t.Fatalf("miss: ok %v err %v", ok, err)
			}
			if err := tc.c.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			b, ok, err := tc.c.Get(ctx, "k")
			if !ok || err != nil || string(b) != "v" {
				t.Fatalf("hit: %q %v %v", b, ok, err)
			}
			if err := tc.c.Set(ctx, "short", []byte("x"), 5*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			if _, ok, _ := tc.c.Get(ctx, "short"); ok {
				t.Fatal("expired entry served")
			}
		})
	}
}

func TestMemoryEvictsLeastRecentlyUsed(t *testing.T) {
	m := NewMemory(2)
	ctx := context.Background()
	for i := range 3 {
		_ = m.Set(ctx, fmt.Sprint(i), []byte{byte(i)}, 0)
		if i == 1 {
			_, _, _ = m.Get(ctx, "0") // 0 becomes most recent
		}
	}
	if _, ok, _ := m.Get(ctx, "1"); ok {
		t.Fatal("LRU entry not evicted")
	}
	if _, ok, _ := m.Get(ctx, "0"); !ok || m.Len() != 2 {
		t.Fatal("recent entry evicted")
	}
}

func TestRedisDown(t *testing.T) {
	rs := redistest.Start(t)
	c := NewRedis(rs.Client(), "")
	rs.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, _, err := c.Get(ctx, "k"); err == nil {
		t.Fatal("want error with redis down")
	}
}
