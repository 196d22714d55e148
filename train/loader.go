package train

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"sort"
)

// LoaderState is the Loader's position, saved in checkpoints: the RNG as it
// was at the start of the current epoch, the epoch and the next batch.
type LoaderState struct {
	Epoch  int    `json:"epoch"`
	Cursor int    `json:"cursor"`
	RNG    string `json:"rng"` // base64 of the PCG state at the epoch's start
}

// Loader yields shuffled, bucketed batches of rows, epoch after epoch. Each
// epoch shuffles the rows, groups them by bucket into batches of
// Buckets.Batch (the last of a bucket may be short; it is padded with
// zero-weight rows), and shuffles the batch order. The order depends only
// on the seed, so a restored LoaderState continues exactly.
//
// Rows sharing a non-empty Row.Group (an item's graded samples) are kept
// together: the group is shuffled as one unit, takes the bucket of its
// longest row, and a batch holds only whole groups (a group larger than
// Buckets.Batch is split into batch-sized chunks). A batch can then come
// out short of Buckets.Batch rows. Without groups the plan is as above.
type Loader struct {
	rows    []Row
	buckets Buckets
	bucket  []Bucket // per row (a grouped row gets its group's bucket)
	units   [][]int  // row indices of each group, in first-row order; nil when no row has a Group
	rng     *rand.PCG
	start   []byte // rng state at the start of the epoch
	epoch   int
	cursor  int
	plan    [][]int
}

// NewLoader returns a loader over rows; every row must fit a bucket. When
// rows carry Row.Pixels (a trainable vision encoder) every bucket gets
// their image grid, which must be the same for all of them (ImageGrid).
func NewLoader(rows []Row, bs Buckets, seed uint64) (*Loader, error) {
	if err := bs.validate(); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: no training rows", ErrData)
	}
	grid, err := ImageGrid(rows)
	if err != nil {
		return nil, err
	}
	l := &Loader{rows: rows, buckets: bs, bucket: make([]Bucket, len(rows)), rng: rand.NewPCG(seed, 0x5eed)}
	for i, r := range rows {
		b, err := bs.For(len(r.IDs))
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		b.Grid = grid
		l.bucket[i] = b
	}
	l.groupUnits()
	l.newEpoch()
	return l, nil
}

// groupUnits collects the rows of each Group into a unit (chunks of at most
// Buckets.Batch rows) and gives every row of a unit its longest row's
// bucket. Ungrouped rows are units of one.
func (l *Loader) groupUnits() {
	byGroup := map[string]int{}
	var units [][]int
	grouped := false
	for i, r := range l.rows {
		if r.Group == "" {
			units = append(units, []int{i})
			continue
		}
		grouped = true
		u, ok := byGroup[r.Group]
		if !ok || len(units[u]) == l.buckets.Batch {
			u = len(units)
			byGroup[r.Group] = u
			units = append(units, nil)
		}
		units[u] = append(units[u], i)
	}
	if !grouped {
		return
	}
	for _, u := range units {
		b := l.bucket[u[0]]
		for _, i := range u {
			if l.bucket[i].Length > b.Length {
				b = l.bucket[i]
			}
		}
		for _, i := range u {
			l.bucket[i] = b
		}
	}
	l.units = units
}

// newEpoch snapshots the RNG and plans the epoch's batches.
func (l *Loader) newEpoch() {
	l.start, _ = l.rng.MarshalBinary() // PCG's MarshalBinary cannot fail
	r := rand.New(l.rng)
	if l.units != nil {
		l.planGroups(r)
		return
	}
	perm := r.Perm(len(l.rows))
	byBucket := map[Bucket][]int{}
	for _, i := range perm {
		byBucket[l.bucket[i]] = append(byBucket[l.bucket[i]], i)
	}
	keys := make([]Bucket, 0, len(byBucket))
	for b := range byBucket {
		keys = append(keys, b)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Length < keys[j].Length })
	l.plan = l.plan[:0]
	for _, b := range keys {
		idx := byBucket[b]
		for i := 0; i < len(idx); i += b.Batch {
			l.plan = append(l.plan, idx[i:min(i+b.Batch, len(idx))])
		}
	}
	r.Shuffle(len(l.plan), func(i, j int) { l.plan[i], l.plan[j] = l.plan[j], l.plan[i] })
	l.cursor = 0
}

// planGroups plans an epoch of whole groups: shuffled units packed, per
// bucket, into batches of at most Buckets.Batch rows, in shuffled order.
func (l *Loader) planGroups(r *rand.Rand) {
	byBucket := map[Bucket][][]int{}
	for _, u := range r.Perm(len(l.units)) {
		b := l.bucket[l.units[u][0]]
		byBucket[b] = append(byBucket[b], l.units[u])
	}
	keys := make([]Bucket, 0, len(byBucket))
	for b := range byBucket {
		keys = append(keys, b)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Length < keys[j].Length })
	l.plan = l.plan[:0]
	for _, b := range keys {
		var cur []int
		for _, u := range byBucket[b] {
			if len(cur)+len(u) > b.Batch {
				l.plan, cur = append(l.plan, cur), nil
			}
			cur = append(cur, u...)
		}
		l.plan = append(l.plan, cur)
	}
	r.Shuffle(len(l.plan), func(i, j int) { l.plan[i], l.plan[j] = l.plan[j], l.plan[i] })
	l.cursor = 0
}

// Next returns the rows of the next batch and their bucket.
func (l *Loader) Next() ([]Row, Bucket) {
	if l.cursor >= len(l.plan) {
		l.epoch++
		l.newEpoch()
	}
	idx := l.plan[l.cursor]
	l.cursor++
	rows := make([]Row, len(idx))
	for i, j := range idx {
		rows[i] = l.rows[j]
	}
	return rows, l.bucket[idx[0]]
}

// Epoch returns the number of completed passes over the rows.
func (l *Loader) Epoch() int { return l.epoch }

// BatchesPerEpoch returns the number of batches in the current epoch.
func (l *Loader) BatchesPerEpoch() int { return len(l.plan) }

// State returns the position to save.
func (l *Loader) State() LoaderState {
	return LoaderState{Epoch: l.epoch, Cursor: l.cursor, RNG: base64.StdEncoding.EncodeToString(l.start)}
}

// Restore moves the loader to a saved position.
func (l *Loader) Restore(s LoaderState) error {
	raw, err := base64.StdEncoding.DecodeString(s.RNG)
	if err == nil {
		err = l.rng.UnmarshalBinary(raw)
	}
	if err != nil {
		return fmt.Errorf("%w: loader RNG: %v", ErrCheckpoint, err)
	}
	l.newEpoch()
	if s.Cursor < 0 || s.Cursor > len(l.plan) {
		return fmt.Errorf("%w: loader cursor %d outside the epoch's %d batches", ErrCheckpoint, s.Cursor, len(l.plan))
	}
	l.epoch, l.cursor = s.Epoch, s.Cursor
	return nil
}

// ImageGrid returns the one patch grid of the rows that carry Pixels (zero
// when none does): the Bucket.Grid of a batch of those rows, for callers
// that build buckets without a Loader. A trainable encoder's graph has a static patch count,
// so images of different sizes in one run are an error naming both grids
// (resize the images to one size); so is a pixel row with other than one
// image.
func ImageGrid(rows []Row) ([3]int64, error) {
	var grid [3]int64
	first := -1
	for i, r := range rows {
		if r.Pixels == nil {
			continue
		}
		if len(r.Grids) != 1 {
			return grid, fmt.Errorf("%w: row %d carries pixels of %d images; a trainable vision encoder takes one per row", ErrData, i, len(r.Grids))
		}
		if first < 0 {
			grid, first = r.Grids[0], i
		} else if r.Grids[0] != grid {
			return grid, fmt.Errorf("%w: row %d has image grid %v (t, h, w patches) and row %d %v: a trainable vision encoder "+
				"needs one image size per run (resize the images to one size)", ErrData, first, grid, i, r.Grids[0])
		}
	}
	return grid, nil
}
