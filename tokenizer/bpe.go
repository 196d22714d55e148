package tokenizer

import (
	"container/heap"
	"fmt"
	"sync"
)

// bpeModel is a byte-pair-encoding model: a vocabulary and ranked merges.
type bpeModel struct {
	vocab        map[string]int
	merges       map[uint64]mergeInfo // (left id, right id) → rank and result
	unk          int                  // unk token id, or -1
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	byteIDs      [256]int // ids of "<0xAB>" tokens when byteFallback, else -1
	cache        *wordCache
}

// mergeInfo is one merge rule: lower rank merges first.
type mergeInfo struct {
	rank int
	id   int
}

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// newBPEModel builds the model from a parsed "BPE" section.
func newBPEModel(m *bpeJSON, cacheSize int) (*bpeModel, error) {
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, fmt.Errorf("%w: BPE dropout %v (non-deterministic)", ErrUnsupported, *m.Dropout)
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" ||
		m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return nil, fmt.Errorf("%w: BPE continuing_subword_prefix/end_of_word_suffix", ErrUnsupported)
	}
	if len(m.Vocab) == 0 {
		return nil, fmt.Errorf("%w: BPE model has an empty vocab", ErrFormat)
	}
	pairs, err := m.mergePairs()
	if err != nil {
		return nil, err
	}
	b := &bpeModel{vocab: m.Vocab, merges: make(map[uint64]mergeInfo, len(pairs)), unk: -1,
		fuseUnk: m.FuseUnk, byteFallback: m.ByteFallback, ignoreMerges: m.IgnoreMerges,
		cache: newWordCache(cacheSize)}
	for rank, p := range pairs {
		a, okA := m.Vocab[p[0]]
		c, okC := m.Vocab[p[1]]
		id, okID := m.Vocab[p[0]+p[1]]
		if !okA || !okC || !okID {
			return nil, fmt.Errorf("%w: merge %d (%q %q) uses a token missing from the vocab", ErrFormat, rank, p[0], p[1])
		}
		if _, dup := b.merges[pairKey(a, c)]; !dup {
			b.merges[pairKey(a, c)] = mergeInfo{rank: rank, id: id}
		}
	}
	if m.UnkToken != nil {
		id, ok := m.Vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("%w: unk_token %q not in vocab", ErrFormat, *m.UnkToken)
		}
		b.unk = id
	}
	for i := range b.byteIDs {
		b.byteIDs[i] = -1
		if id, ok := m.Vocab[fmt.Sprintf("<0x%02X>", i)]; ok && m.ByteFallback {
			b.byteIDs[i] = id
		}
	}
	return b, nil
}

// encodeWord appends the ids of one pre-token (already byte-level mapped
// when the tokenizer is byte-level). Results are cached per word.
func (b *bpeModel) encodeWord(dst []int, word string) ([]int, error) {
	if ids, ok := b.cache.get(word); ok {
		return append(dst, ids...), nil
	}
	if b.ignoreMerges {
		if id, ok := b.vocab[word]; ok {
			return append(dst, id), nil
		}
	}
	syms, err := b.initialSymbols(word)
	if err != nil {
		return dst, err
	}
	ids := b.merge(syms)
	b.cache.put(word, ids)
	return append(dst, ids...), nil
}

// initialSymbols maps each character of word to its id, applying unk and
// byte fallback the way Hugging Face's BPE::merge_word does.
func (b *bpeModel) initialSymbols(word string) ([]int, error) {
	syms := make([]int, 0, len(word))
	prevUnk := false
	for _, r := range word {
		ch := string(r)
		if id, ok := b.vocab[ch]; ok {
			syms = append(syms, id)
			prevUnk = false
			continue
		}
		if b.byteFallback {
			ok := true
			for i := 0; i < len(ch); i++ {
				ok = ok && b.byteIDs[ch[i]] >= 0
			}
			if ok {
				for i := 0; i < len(ch); i++ {
					syms = append(syms, b.byteIDs[ch[i]])
				}
				prevUnk = false
				continue
			}
		}
		if b.unk < 0 {
			return nil, fmt.Errorf("%w: %q and no unk_token", ErrUnknownToken, ch)
		}
		if !(b.fuseUnk && prevUnk) {
			syms = append(syms, b.unk)
		}
		prevUnk = true
	}
	return syms, nil
}

// merge applies the ranked merges to a symbol sequence: always the
// lowest-ranked adjacent pair first, leftmost among equals. A heap over a
// linked list keeps long words O(n log n).
func (b *bpeModel) merge(ids []int) []int {
	n := len(ids)
	if n < 2 {
		return append([]int(nil), ids...)
	}
	prev := make([]int, n)
	next := make([]int, n)
	alive := make([]bool, n)
	for i := range ids {
		prev[i], next[i], alive[i] = i-1, i+1, true
	}
	next[n-1] = -1
	h := make(mergeHeap, 0, n)
	for i := 0; i+1 < n; i++ {
		if mi, ok := b.merges[pairKey(ids[i], ids[i+1])]; ok {
			h = append(h, mergeCand{rank: mi.rank, pos: i, left: ids[i], right: ids[i+1]})
		}
	}
	heap.Init(&h)
	for h.Len() > 0 {
		c := heap.Pop(&h).(mergeCand)
		r := next[c.pos]
		if !alive[c.pos] || r < 0 || ids[c.pos] != c.left || ids[r] != c.right {
			continue // stale candidate
		}
		ids[c.pos] = b.merges[pairKey(c.left, c.right)].id
		alive[r] = false
		next[c.pos] = next[r]
		if next[r] >= 0 {
			prev[next[r]] = c.pos
		}
		if p := prev[c.pos]; p >= 0 {
			if mi, ok := b.merges[pairKey(ids[p], ids[c.pos])]; ok {
				heap.Push(&h, mergeCand{rank: mi.rank, pos: p, left: ids[p], right: ids[c.pos]})
			}
		}
		if q := next[c.pos]; q >= 0 {
			if mi, ok := b.merges[pairKey(ids[c.pos], ids[q])]; ok {
				heap.Push(&h, mergeCand{rank: mi.rank, pos: c.pos, left: ids[c.pos], right: ids[q]})
			}
		}
	}
	out := make([]int, 0, n)
	for i := 0; i >= 0; i = next[i] {
		out = append(out, ids[i])
	}
	return out
}

// mergeCand is a possible merge of the symbol at pos with its successor.
type mergeCand struct {
	rank, pos   int
	left, right int // the ids it was computed for (detects stale entries)
}

type mergeHeap []mergeCand

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(mergeCand)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// wordCache maps a word to its ids. It stops admitting new words once it
// holds capacity entries (as Hugging Face's BPE cache does), so memory stays
// bounded while the frequent words of a workload stay cached.
type wordCache struct {
	mu       sync.RWMutex
	m        map[string][]int
	capacity int
}

func newWordCache(capacity int) *wordCache {
	return &wordCache{m: make(map[string][]int), capacity: capacity}
}

func (c *wordCache) get(w string) ([]int, bool) {
	if c.capacity <= 0 {
		return nil, false
	}
	c.mu.RLock()
	ids, ok := c.m[w]
	c.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(w string, ids []int) {
	if c.capacity <= 0 || len(w) > maxCachedWord {
		return
	}
	c.mu.Lock()
	if len(c.m) < c.capacity {
		c.m[w] = ids
	}
	c.mu.Unlock()
}

// maxCachedWord is the longest word (bytes) the cache keeps.
const maxCachedWord = 256
