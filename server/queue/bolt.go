package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/medgr2/medgr2/server/api"
)

// BoltConfig tunes the embedded store. Zero fields take defaults.
type BoltConfig struct {
	// MaxAttempts is how many failed attempts, or claims that ended
	// without an outcome (the process died while running the item), an
	// item gets before it is dead-lettered; default 3.
	MaxAttempts int
	// Block is the longest Claim wait; default 1s.
	Block time.Duration
	// ResultTTL is how long a finished or cancelled job and its results
	// are kept; default 7 days.
	ResultTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DefaultResultTTL is how long finished jobs are kept when no TTL is set.
const DefaultResultTTL = 7 * 24 * time.Hour

// BoltFile is the name of the job database inside the state folder.
const BoltFile = "jobs.db"

// Bucket names.
var (
	bMeta    = []byte("meta")    // "idkey" → id key
	bJobs    = []byte("jobs")    // id → boltJob JSON
	bResults = []byte("results") // id → bucket: index (4 bytes BE) → result line
	bTasks   = []byte("tasks")   // sequence (8 bytes BE) → task record
	bDead    = []byte("dead")    // sequence → task record
	bGone    = []byte("gone")    // id → expiry time (RFC 3339) of a swept job
)

// Bolt is the embedded, durable Store: jobs, tasks and results live in one
// bbolt file (BoltFile in the state folder) and survive a crash or restart.
// Every change is one fsynced transaction: an item's result and the
// removal of its task commit together, so each item gets exactly one
// result. A restarted process takes up the tasks that were queued or
// running. The file is locked: one process at a time (use Redis to share
// jobs between replicas).
type Bolt struct {
	db    *bolt.DB   // owned
	cfg   BoltConfig // defaults applied
	idKey []byte     // tags job ids (stored in the file)

	mu        sync.Mutex          // guards the fields below
	inflight  map[string]struct{} // task keys claimed and not yet completed or released
	wake      chan struct{}       // closed and replaced when tasks are added
	closed    chan struct{}       // closed by Close
	lastSweep time.Time           // last expiry sweep
}

// OpenBolt opens (creating if needed) the job database in dir.
func OpenBolt(dir string, cfg BoltConfig) (*Bolt, error) {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Block <= 0 {
		cfg.Block = time.Second
	}
	if cfg.ResultTTL <= 0 {
		cfg.ResultTTL = DefaultResultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	path := filepath.Join(dir, BoltFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("queue: %s is locked by another process (one server per state folder; use --redis to share jobs)", path)
		}
		return nil, fmt.Errorf("queue: open %s: %w", path, err)
	}
	b := &Bolt{db: db, cfg: cfg, inflight: map[string]struct{}{}, wake: make(chan struct{}), closed: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bMeta, bJobs, bResults, bTasks, bDead, bGone} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		if k := meta.Get([]byte("idkey")); k != nil {
			b.idKey = bytes.Clone(k)
			return nil
		}
		k, err := NewIDKey()
		if err != nil {
			return err
		}
		b.idKey = k
		return meta.Put([]byte("idkey"), k)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("queue: init %s: %w", path, err)
	}
	return b, nil
}

// Close releases the database; tasks still running stay queued for the
// next open.
func (b *Bolt) Close() error {
	b.mu.Lock()
	select {
	case <-b.closed:
	default:
		close(b.closed)
	}
	b.mu.Unlock()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("queue: close: %w", err)
	}
	return nil
}

// boltJob is a job's record.
type boltJob struct {
	Kind     string         `json:"kind"`
	Owner    string         `json:"owner,omitempty"`
	Total    int            `json:"total"`
	Done     int            `json:"done"`
	Failed   int            `json:"failed"`
	Canceled bool           `json:"canceled,omitempty"`
	Created  time.Time      `json:"created"`
	Finished time.Time      `json:"finished,omitzero"` // when done or cancelled; starts the TTL
	Errors   []api.JobError `json:"errors,omitempty"`
}

// taskHeader is a task record's header; the payload follows a newline.
type taskHeader struct {
	Job      string `json:"job"`
	Index    int    `json:"idx"`
	Kind     string `json:"kind"`
	Attempts int    `json:"attempts,omitempty"`
	Claims   int    `json:"claims,omitempty"` // claims since the last outcome or release
}

func encodeTask(h taskHeader, payload []byte) ([]byte, error) {
	j, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	return append(append(j, '\n'), payload...), nil
}

func decodeTask(v []byte) (taskHeader, []byte, error) {
	var h taskHeader
	j, payload, ok := bytes.Cut(v, []byte{'\n'})
	if !ok {
		return h, nil, errors.New("task record without payload")
	}
	err := json.Unmarshal(j, &h)
	return h, payload, err
}

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

func indexKey(i int) []byte {
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], uint32(i))
	return k[:]
}

// dbErr wraps a database error; a closed database is ErrUnavailable.
func dbErr(op string, err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("queue: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("queue: %s: %w", op, err)
}

func getJob(tx *bolt.Tx, id string) (*boltJob, error) {
	v := tx.Bucket(bJobs).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var j boltJob
	if err := json.Unmarshal(v, &j); err != nil {
		return nil, fmt.Errorf("job %s record: %w", id, err)
	}
	return &j, nil
}

func putJob(tx *bolt.Tx, id string, j *boltJob) error {
	v, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return tx.Bucket(bJobs).Put([]byte(id), v)
}

// Submit implements Store.
func (b *Bolt) Submit(_ context.Context, kind, owner string, items [][]byte) (string, error) {
	if len(items) == 0 {
		return "", ErrEmptyJob
	}
	now := b.cfg.Now().UTC()
	id, err := newID(b.idKey, now)
	if err != nil {
		return "", err
	}
	err = b.db.Update(func(tx *bolt.Tx) error {
		if err := putJob(tx, id, &boltJob{Kind: kind, Owner: owner, Total: len(items), Created: now}); err != nil {
			return err
		}
		if _, err := tx.Bucket(bResults).CreateBucket([]byte(id)); err != nil {
			return err
		}
		tasks := tx.Bucket(bTasks)
		for i, it := range items {
			seq, err := tasks.NextSequence()
			if err != nil {
				return err
			}
			v, err := encodeTask(taskHeader{Job: id, Index: i, Kind: kind}, it)
			if err != nil {
				return err
			}
			if err := tasks.Put(seqKey(seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", dbErr("submit", err)
	}
	b.signal()
	return id, nil
}

// signal wakes every waiting Claim.
func (b *Bolt) signal() {
	b.mu.Lock()
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

// lookup returns id's job, or the ErrNotFound/ErrLost error for it. An
// expired job not yet swept counts as gone.
func (b *Bolt) lookup(tx *bolt.Tx, id string) (*boltJob, error) {
	j, err := getJob(tx, id)
	if err != nil {
		return nil, err
	}
	if j != nil && !b.expired(j) {
		return j, nil
	}
	if j != nil || tx.Bucket(bGone).Get([]byte(id)) != nil {
		return nil, missing(b.idKey, id, fmt.Sprintf("its results expired (they are kept %s after the job finishes)", b.cfg.ResultTTL))
	}
	return nil, missing(b.idKey, id, "the job database was lost or replaced since (was the state folder deleted?)")
}

func (b *Bolt) expired(j *boltJob) bool {
	return !j.Finished.IsZero() && b.cfg.Now().Sub(j.Finished) > b.cfg.ResultTTL
}

// Status implements Store.
func (b *Bolt) Status(_ context.Context, id string) (Job, error) {
	var out Job
	err := b.db.View(func(tx *bolt.Tx) error {
		j, err := b.lookup(tx, id)
		if err != nil {
			return err
		}
		out = Job{Owner: j.Owner, JobStatus: api.JobStatus{ID: id, Kind: j.Kind, State: state(j.Canceled, j.Done, j.Total),
			Total: j.Total, Done: j.Done, Failed: j.Failed, Errors: j.Errors, CreatedAt: j.Created}}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrLost) {
			return Job{}, err
		}
		return Job{}, dbErr("status "+id, err)
	}
	return out, nil
}

// resultsChunk is how many result lines one read transaction copies.
const resultsChunk = 512

// Results implements Store. Lines are copied out in chunks so that no read
// transaction stays open while fn writes to a slow client.
func (b *Bolt) Results(ctx context.Context, id string, fn func([]byte) error) error {
	if _, err := b.Status(ctx, id); err != nil {
		return err
	}
	next := indexKey(0)
	for next != nil {
		var lines [][]byte
		err := b.db.View(func(tx *bolt.Tx) error {
			rb := tx.Bucket(bResults).Bucket([]byte(id))
			if rb == nil {
				return missing(b.idKey, id, "its results expired while being read")
			}
			c := rb.Cursor()
			k, v := c.Seek(next)
			for ; k != nil && len(lines) < resultsChunk; k, v = c.Next() {
				lines = append(lines, bytes.Clone(v))
			}
			next = nil
			if k != nil {
				next = bytes.Clone(k)
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrLost) {
				return err
			}
			return dbErr("results "+id, err)
		}
		for _, l := range lines {
			if err := fn(l); err != nil {
				return err
			}
		}
	}
	return nil
}

// Cancel implements Store: the job's queued tasks are deleted; items
// running finish and keep their results.
func (b *Bolt) Cancel(_ context.Context, id string) error {
	err := b.db.Update(func(tx *bolt.Tx) error {
		j, err := b.lookup(tx, id)
		if err != nil {
			return err
		}
		if !j.Canceled {
			j.Canceled = true
			if j.Finished.IsZero() {
				j.Finished = b.cfg.Now().UTC()
			}
		}
		if err := putJob(tx, id, j); err != nil {
			return err
		}
		tasks := tx.Bucket(bTasks)
		var drop [][]byte
		_ = tasks.ForEach(func(k, v []byte) error {
			if h, _, err := decodeTask(v); err == nil && h.Job == id {
				drop = append(drop, bytes.Clone(k))
			}
			return nil
		})
		for _, k := range drop {
			if err := tasks.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrLost) {
			return err
		}
		return dbErr("cancel "+id, err)
	}
	return nil
}

// Claim implements Store. A claim is recorded in the task (its claim
// count) before the task is handed out, so an item whose processing keeps
// killing the process is dead-lettered after MaxAttempts restarts instead
// of looping.
func (b *Bolt) Claim(ctx context.Context, _ string, max int) ([]Task, error) {
	timer := time.NewTimer(b.cfg.Block)
	defer timer.Stop()
	for {
		b.mu.Lock()
		wake, closed := b.wake, b.closed
		b.mu.Unlock()
		b.maybeSweep()
		tasks, err := b.claimNow(max)
		if err != nil || len(tasks) > 0 {
			return tasks, err
		}
		select {
		case <-wake:
		case <-timer.C:
			return nil, nil
		case <-closed:
			return nil, fmt.Errorf("queue: claim: %w: database closed", ErrUnavailable)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// claimNow takes up to max queued tasks that no worker holds.
func (b *Bolt) claimNow(max int) ([]Task, error) {
	var out []Task
	var keys []string
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.db.Update(func(tx *bolt.Tx) error {
		out, keys = out[:0], keys[:0]
		tasks := tx.Bucket(bTasks)
		// Collect first: a bucket must not change under its cursor.
		var ks, vs [][]byte
		c := tasks.Cursor()
		for k, v := c.First(); k != nil && len(ks) < max; k, v = c.Next() {
			if _, busy := b.inflight[string(k)]; !busy {
				ks, vs = append(ks, bytes.Clone(k)), append(vs, bytes.Clone(v))
			}
		}
		for i, k := range ks {
			h, payload, err := decodeTask(vs[i])
			if err != nil {
				return fmt.Errorf("task %x: %w", k, err)
			}
			if h.Claims >= b.cfg.MaxAttempts {
				msg := fmt.Sprintf("claimed %d times without an outcome (the server stopped while running it each time)", h.Claims)
				if err := b.deadLetter(tx, k, vs[i], h, msg); err != nil {
					return err
				}
				continue
			}
			h.Claims++
			nv, err := encodeTask(h, payload)
			if err != nil {
				return err
			}
			if err := tasks.Put(k, nv); err != nil {
				return err
			}
			out = append(out, Task{JobID: h.Job, Index: h.Index, Kind: h.Kind, Payload: payload,
				Attempts: h.Attempts, ref: string(k)})
			keys = append(keys, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, dbErr("claim", err)
	}
	for _, k := range keys {
		b.inflight[k] = struct{}{}
	}
	return out, nil
}

// deadLetter moves the task at key to the dead bucket and records msg as
// its result, in tx.
func (b *Bolt) deadLetter(tx *bolt.Tx, key, rec []byte, h taskHeader, msg string) error {
	dead := tx.Bucket(bDead)
	seq, err := dead.NextSequence()
	if err != nil {
		return err
	}
	if err := dead.Put(seqKey(seq), append(bytes.Clone(rec), []byte("\n"+msg)...)); err != nil {
		return err
	}
	return b.record(tx, key, h.Job, h.Index, Outcome{Err: msg})
}

// record stores o as item index's result unless it has one, and deletes
// the task at key, in tx.
func (b *Bolt) record(tx *bolt.Tx, key []byte, id string, index int, o Outcome) error {
	if err := tx.Bucket(bTasks).Delete(key); err != nil {
		return err
	}
	j, err := getJob(tx, id)
	if err != nil || j == nil {
		return err // a job swept away: nothing to record
	}
	rb := tx.Bucket(bResults).Bucket([]byte(id))
	if rb == nil || rb.Get(indexKey(index)) != nil {
		return nil // first outcome wins
	}
	if err := rb.Put(indexKey(index), resultLine(index, o)); err != nil {
		return err
	}
	j.Done++
	if o.Err != "" {
		j.Failed++
		if len(j.Errors) < maxJobErrors {
			j.Errors = append(j.Errors, api.JobError{Index: index, Error: o.Err})
		}
	}
	if j.Done >= j.Total && j.Finished.IsZero() {
		j.Finished = b.cfg.Now().UTC()
	}
	return putJob(tx, id, j)
}

// settle runs fn in a batched write transaction (concurrent completions
// share one fsync), then forgets t's claim.
func (b *Bolt) settle(op string, t Task, fn func(tx *bolt.Tx) error) error {
	err := b.db.Batch(fn)
	b.mu.Lock()
	delete(b.inflight, t.ref)
	b.mu.Unlock()
	if err != nil {
		return dbErr(fmt.Sprintf("%s %s/%d", op, t.JobID, t.Index), err)
	}
	return nil
}

// Complete implements Store.
func (b *Bolt) Complete(_ context.Context, t Task, o Outcome) error {
	return b.settle("complete", t, func(tx *bolt.Tx) error {
		return b.record(tx, []byte(t.ref), t.JobID, t.Index, o)
	})
}

// Fail implements Store.
func (b *Bolt) Fail(_ context.Context, t Task, cause error) error {
	t.Attempts++
	return b.settle("fail", t, func(tx *bolt.Tx) error {
		h := taskHeader{Job: t.JobID, Index: t.Index, Kind: t.Kind, Attempts: t.Attempts}
		if t.Attempts >= b.cfg.MaxAttempts {
			rec, err := encodeTask(h, t.Payload)
			if err != nil {
				return err
			}
			return b.deadLetter(tx, []byte(t.ref), rec, h, fmt.Sprintf("failed after %d attempts: %v", t.Attempts, cause))
		}
		return b.requeue(tx, t, h)
	})
}

// Release implements Store: t goes back to the queue without counting an
// attempt or a claim.
func (b *Bolt) Release(_ context.Context, t Task) error {
	err := b.settle("release", t, func(tx *bolt.Tx) error {
		return b.requeue(tx, t, taskHeader{Job: t.JobID, Index: t.Index, Kind: t.Kind, Attempts: t.Attempts})
	})
	b.signal()
	return err
}

// requeue moves the task at t.ref to the end of the queue with header h,
// unless its job was cancelled or swept.
func (b *Bolt) requeue(tx *bolt.Tx, t Task, h taskHeader) error {
	tasks := tx.Bucket(bTasks)
	if tasks.Get([]byte(t.ref)) == nil {
		return nil // cancelled meanwhile
	}
	if err := tasks.Delete([]byte(t.ref)); err != nil {
		return err
	}
	seq, err := tasks.NextSequence()
	if err != nil {
		return err
	}
	v, err := encodeTask(h, t.Payload)
	if err != nil {
		return err
	}
	return tasks.Put(seqKey(seq), v)
}

// Pending implements Store.
func (b *Bolt) Pending(_ context.Context) (int64, error) {
	var n int
	err := b.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bTasks).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, dbErr("pending", err)
	}
	return int64(n), nil
}

// Ping implements Store.
func (b *Bolt) Ping(_ context.Context) error {
	if err := b.db.View(func(*bolt.Tx) error { return nil }); err != nil {
		return dbErr("ping", err)
	}
	return nil
}

// DeadLetters returns the number of dead-lettered tasks.
func (b *Bolt) DeadLetters(_ context.Context) (int, error) {
	var n int
	err := b.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bDead).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, dbErr("dead letters", err)
	}
	return n, nil
}

// sweepEvery is how often Claim removes expired jobs.
const sweepEvery = time.Minute

// goneTTL is how long a swept job's tombstone is kept (so its id answers
// ErrLost with the reason "expired").
const goneTTL = 90 * 24 * time.Hour

// maybeSweep runs Sweep at most every sweepEvery; errors are left for the
// next sweep.
func (b *Bolt) maybeSweep() {
	now := b.cfg.Now()
	b.mu.Lock()
	due := now.Sub(b.lastSweep) >= sweepEvery
	if due {
		b.lastSweep = now
	}
	b.mu.Unlock()
	if due {
		_, _ = b.Sweep()
	}
}

// Sweep deletes jobs finished more than ResultTTL ago, leaving a tombstone
// per id, and returns how many it deleted.
func (b *Bolt) Sweep() (int, error) {
	n := 0
	now := b.cfg.Now().UTC()
	err := b.db.Update(func(tx *bolt.Tx) error {
		n = 0
		var ids [][]byte
		err := tx.Bucket(bJobs).ForEach(func(k, v []byte) error {
			var j boltJob
			if err := json.Unmarshal(v, &j); err == nil && b.expired(&j) {
				ids = append(ids, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		gone := tx.Bucket(bGone)
		for _, id := range ids {
			if err := tx.Bucket(bJobs).Delete(id); err != nil {
				return err
			}
			if err := tx.Bucket(bResults).DeleteBucket(id); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return err
			}
			if err := gone.Put(id, []byte(now.Format(time.RFC3339))); err != nil {
				return err
			}
			n++
		}
		var old [][]byte
		_ = gone.ForEach(func(k, v []byte) error {
			if t, err := time.Parse(time.RFC3339, string(v)); err == nil && now.Sub(t) > goneTTL {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		for _, k := range old {
			if err := gone.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, dbErr("sweep", err)
	}
	return n, nil
}
