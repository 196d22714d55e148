package tokenizer

import (
	"container/heap"
	"context"
	"fmt"

	"golang.org/x/text/unicode/norm"
)

// DefaultTrainVocabSize is TrainOptions.VocabSize when it is 0.
const DefaultTrainVocabSize = 3000

// QwenVLSpecialTokens returns the added tokens of the Qwen2-VL chat format
// and the MedGR² answer format, in the id order TrainBPE gives them.
// "<think>", "</think>", "<answer>" and "</answer>" are added but not
// special (as in Qwen3), so Decode(ids, true) keeps them for answer parsing.
func QwenVLSpecialTokens() []AddedToken {
	tok := func(s string, special bool) AddedToken { return AddedToken{Content: s, Special: special} }
	return []AddedToken{
		tok("<|endoftext|>", true), tok("<|im_start|>", true), tok("<|im_end|>", true),
		tok("<|vision_start|>", true), tok("<|vision_end|>", true), tok("<|image_pad|>", true),
		tok("<think>", false), tok("</think>", false), tok("<answer>", false), tok("</answer>", false),
	}
}

// TrainOptions configures TrainBPE.
type TrainOptions struct {
	// VocabSize is the total number of ids: 256 byte tokens, the learned
	// merges and the added tokens. 0 means DefaultTrainVocabSize.
	VocabSize int
	// MinFrequency stops training when the best pair occurs fewer times;
	// 0 means 2.
	MinFrequency int
	// AddedTokens get the last ids, in order; nil means
	// QwenVLSpecialTokens(). Their ID fields are ignored.
	AddedTokens []AddedToken
}

// TrainBPE learns a byte-level BPE tokenizer (GPT-2/Qwen style: NFC, the
// Qwen split pattern, ByteLevel, BPE) from texts. Added tokens written in
// the texts are cut out before counting. The result is deterministic given
// the texts and options: ties between equally frequent pairs go to the pair
// with the smaller ids. Training stops early (fewer ids than VocabSize)
// when no pair reaches MinFrequency.
func TrainBPE(ctx context.Context, texts []string, opts TrainOptions) (*Tokenizer, error) {
	if opts.VocabSize == 0 {
		opts.VocabSize = DefaultTrainVocabSize
	}
	if opts.MinFrequency == 0 {
		opts.MinFrequency = 2
	}
	if opts.AddedTokens == nil {
		opts.AddedTokens = QwenVLSpecialTokens()
	}
	if opts.VocabSize < 256+len(opts.AddedTokens) {
		return nil, fmt.Errorf("%w: vocab size %d is below 256 bytes + %d added tokens", ErrTrain, opts.VocabSize, len(opts.AddedTokens))
	}
	if opts.MinFrequency < 1 {
		return nil, fmt.Errorf("%w: min frequency %d", ErrTrain, opts.MinFrequency)
	}
	bt := newBPETrainer(opts.AddedTokens)
	if err := bt.count(ctx, texts); err != nil {
		return nil, err
	}
	if len(bt.words) == 0 {
		return nil, fmt.Errorf("%w: the corpus has no text", ErrTrain)
	}
	if err := bt.learn(ctx, opts.VocabSize-len(opts.AddedTokens), opts.MinFrequency); err != nil {
		return nil, err
	}
	data, err := bt.tokenizerJSON(opts.AddedTokens)
	if err != nil {
		return nil, err
	}
	return LoadBytes(data)
}

// bpeTrainer holds the state of one training run.
type bpeTrainer struct {
	bl      *byteLevel
	added   *addedMatcher
	tokens  []string       // id → token
	ids     map[string]int // token → id
	merges  [][2]int       // learned merges, in rank order
	words   [][]int        // distinct pre-tokens as symbol ids
	counts  []int          // occurrences of each word
	pairs   map[uint64]int // pair → weighted count
	where   map[uint64]map[int]struct{}
	pending pairHeap
}

func newBPETrainer(added []AddedToken) *bpeTrainer {
	bt := &bpeTrainer{bl: newByteLevel(), added: newAddedMatcher(added), ids: make(map[string]int),
		pairs: make(map[uint64]int), where: make(map[uint64]map[int]struct{})}
	for b := 0; b < 256; b++ {
		bt.addToken(bt.bl.enc[b])
	}
	return bt
}

func (bt *bpeTrainer) addToken(tok string) int {
	if id, ok := bt.ids[tok]; ok {
		return id
	}
	bt.ids[tok] = len(bt.tokens)
	bt.tokens = append(bt.tokens, tok)
	return len(bt.tokens) - 1
}

// count splits the texts exactly as the trained tokenizer will and counts
// the distinct pre-tokens.
func (bt *bpeTrainer) count(ctx context.Context, texts []string) error {
	index := make(map[string]int)
	var ranges [][2]int
	for i, text := range texts {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("tokenizer: train: %w", err)
			}
		}
		for _, seg := range bt.added.split(nil, text) {
			if seg.id >= 0 {
				continue
			}
			s := norm.NFC.String(seg.text)
			ranges, _ = qwenSplitter{}.matches(ranges[:0], s)
			for _, r := range ranges {
				w := bt.bl.encode(s[r[0]:r[1]])
				if k, ok := index[w]; ok {
					bt.counts[k]++
					continue
				}
				index[w] = len(bt.words)
				syms := make([]int, 0, len(w))
				for _, c := range w {
					syms = append(syms, bt.ids[string(c)])
				}
				bt.words = append(bt.words, syms)
				bt.counts = append(bt.counts, 1)
			}
		}
	}
	for k, w := range bt.words {
		bt.addPairs(k, w, 1)
	}
	return nil
}

// addPairs adds sign × the word's count to the count of each of its pairs.
func (bt *bpeTrainer) addPairs(k int, w []int, sign int) {
	for i := 0; i+1 < len(w); i++ {
		key := pairKey(w[i], w[i+1])
		bt.pairs[key] += sign * bt.counts[k]
		if sign > 0 {
			set := bt.where[key]
			if set == nil {
				set = make(map[int]struct{})
				bt.where[key] = set
			}
			set[k] = struct{}{}
		}
		heap.Push(&bt.pending, pairEntry{key: key, count: bt.pairs[key]})
	}
}

// learn merges the best pair until the model has size ids.
func (bt *bpeTrainer) learn(ctx context.Context, size, minFreq int) error {
	for len(bt.tokens) < size {
		if len(bt.merges)%256 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("tokenizer: train: %w", err)
			}
		}
		key, count, ok := bt.best()
		if !ok || count < minFreq {
			break
		}
		a, b := int(key>>32), int(uint32(key))
		id := bt.addToken(bt.tokens[a] + bt.tokens[b])
		bt.merges = append(bt.merges, [2]int{a, b})
		bt.applyMerge(key, a, b, id)
	}
	return nil
}

// best pops the most frequent pair, skipping stale heap entries.
func (bt *bpeTrainer) best() (uint64, int, bool) {
	for bt.pending.Len() > 0 {
		e := heap.Pop(&bt.pending).(pairEntry)
		if c := bt.pairs[e.key]; c == e.count && c > 0 {
			return e.key, c, true
		}
	}
	return 0, 0, false
}

// applyMerge replaces the pair (a, b) by id in every word holding it.
func (bt *bpeTrainer) applyMerge(key uint64, a, b, id int) {
	set := bt.where[key]
	delete(bt.where, key)
	for k := range set {
		w := bt.words[k]
		bt.addPairs(k, w, -1)
		out := w[:0]
		for i := 0; i < len(w); i++ {
			if i+1 < len(w) && w[i] == a && w[i+1] == b {
				out = append(out, id)
				i++
				continue
			}
			out = append(out, w[i])
		}
		bt.words[k] = out
		bt.addPairs(k, out, 1)
	}
	delete(bt.pairs, key)
}

// pairEntry is a heap entry: the count a pair had when it was pushed.
type pairEntry struct {
	key   uint64
	count int
}

// pairHeap orders by count, then by smaller key (deterministic ties).
type pairHeap []pairEntry

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count > h[j].count
	}
	return h[i].key < h[j].key
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pairEntry)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
