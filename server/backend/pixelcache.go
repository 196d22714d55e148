package backend

import (
	"container/list"
	"crypto/sha256"
	"sync"

	"github.com/medgr2/medgr2/preprocessing"
)

// DefaultPixelCacheBytes is the default bound of the preprocessed-pixel
// cache: 256 MiB, about 35 processed 640×480 images (7.4 MB each as
// float32 patches) or several thousand small ones.
const DefaultPixelCacheBytes = 256 << 20

// pixelCache is a least-recently-used cache of processed images keyed by
// the SHA-256 of their encoded bytes and bounded by the bytes of their
// pixel values. It is safe for concurrent use; cached Pixels are shared
// and must not be modified.
type pixelCache struct {
	mu    sync.Mutex                 // guards the fields below
	max   int64                      // bound on the bytes of cached values
	size  int64                      // bytes of cached values now
	order *list.List                 // front: most recently used *pixelEntry
	byKey map[[32]byte]*list.Element // entries by key
}

// pixelEntry is one cached image.
type pixelEntry struct {
	key [32]byte
	px  *preprocessing.Pixels
}

// newPixelCache returns a cache holding at most max bytes of pixels.
func newPixelCache(max int64) *pixelCache {
	return &pixelCache{max: max, order: list.New(), byKey: map[[32]byte]*list.Element{}}
}

// pixelKey returns the cache key of encoded image bytes.
func pixelKey(b []byte) [32]byte { return sha256.Sum256(b) }

// pixelBytes is what px counts against the bound.
func pixelBytes(px *preprocessing.Pixels) int64 { return int64(len(px.Values)) * 4 }

// get returns the pixels cached under key and marks them recently used.
func (c *pixelCache) get(key [32]byte) (*preprocessing.Pixels, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*pixelEntry).px, true
}

// put caches px under key, evicting the least recently used entries to
// stay within the bound. Pixels larger than the whole bound are not
// cached.
func (c *pixelCache) put(key [32]byte, px *preprocessing.Pixels) {
	n := pixelBytes(px)
	if n > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[key]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.byKey[key] = c.order.PushFront(&pixelEntry{key: key, px: px})
	c.size += n
	for c.size > c.max {
		old := c.order.Back()
		ent := old.Value.(*pixelEntry)
		c.order.Remove(old)
		delete(c.byKey, ent.key)
		c.size -= pixelBytes(ent.px)
	}
}
