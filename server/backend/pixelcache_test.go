package backend

import (
	"testing"

	"github.com/medgr2/medgr2/preprocessing"
)

// pixelsOf returns pixels of n float32 values (4n bytes).
func pixelsOf(n int) *preprocessing.Pixels {
	return &preprocessing.Pixels{Values: make([]float32, n)}
}

func TestPixelCacheLRU(t *testing.T) {
	c := newPixelCache(100) // bytes: 25 values
	a, b, d := pixelKey([]byte("a")), pixelKey([]byte("b")), pixelKey([]byte("d"))
	pa, pb, pd := pixelsOf(10), pixelsOf(10), pixelsOf(10) // 40 bytes each
	c.put(a, pa)
	c.put(b, pb)
	if got, ok := c.get(a); !ok || got != pa {
		t.Fatalf("get(a) = %p, %v; want %p", got, ok, pa)
	}
	c.put(d, pd) // 120 bytes > 100: evicts b, the least recently used
	if _, ok := c.get(b); ok {
		t.Error("b survived eviction")
	}
	for _, k := range [][32]byte{a, d} {
		if _, ok := c.get(k); !ok {
			t.Errorf("entry %x evicted, want kept", k[:4])
		}
	}
	if c.size != 80 {
		t.Errorf("size %d bytes, want 80", c.size)
	}
	c.put(a, pa) // again: no double count
	if c.size != 80 || c.order.Len() != 2 {
		t.Errorf("re-put: size %d, %d entries; want 80, 2", c.size, c.order.Len())
	}
	huge := pixelKey([]byte("huge"))
	c.put(huge, pixelsOf(26)) // 104 bytes: larger than the bound
	if _, ok := c.get(huge); ok || c.size != 80 {
		t.Errorf("an entry over the bound was cached (size %d)", c.size)
	}
}
