package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/medgr2/medgr2/server/api"
)

// RedisConfig tunes the Redis Streams store. Zero fields take defaults.
type RedisConfig struct {
	Prefix      string        // key namespace; default "medgr2:"
	Group       string        // consumer group; default "workers"
	MaxAttempts int           // failed attempts or deliveries before dead-lettering; default 5
	ClaimIdle   time.Duration // a task pending this long is taken from its (dead) consumer; default DefaultClaimIdle
	Block       time.Duration // longest Claim wait; default 1s
	// ResultTTL is how long a finished or cancelled job's keys live;
	// default DefaultResultTTL.
	ResultTTL time.Duration
	// IDKey tags job ids so that an id whose keys Redis no longer holds is
	// reported as lost (ErrLost), not unknown. Keep it outside Redis (serve
	// keeps it in the state folder) and share it between replicas; default
	// a random key per process.
	IDKey []byte
}

// DefaultClaimIdle is how long a task may stay pending with a consumer
// before another takes it over, when RedisConfig.ClaimIdle is 0.
const DefaultClaimIdle = 30 * time.Second

// Redis is a Store on Redis Streams with a consumer group: tasks are
// XADDed to one stream, read with XREADGROUP, acknowledged with XACK, and
// taken over from dead workers with XAUTOCLAIM. Results live in a hash per
// job (HSETNX: the first outcome per item wins), so a restarted server
// serves them and duplicate deliveries never duplicate results.
type Redis struct {
	c   redis.UniversalClient // owned by the caller
	cfg RedisConfig           // defaults applied

	groupOnce sync.Mutex // serialises group creation
	groupOK   bool       // group known to exist

	claimMu   sync.Mutex // guards lastClaim
	lastClaim time.Time  // last XAUTOCLAIM sweep
}

// NewRedis returns a Redis store on client.
func NewRedis(client redis.UniversalClient, cfg RedisConfig) *Redis {
	if cfg.Prefix == "" {
		cfg.Prefix = "medgr2:"
	}
	if cfg.Group == "" {
		cfg.Group = "workers"
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.ClaimIdle <= 0 {
		cfg.ClaimIdle = DefaultClaimIdle
	}
	if cfg.ResultTTL <= 0 {
		cfg.ResultTTL = DefaultResultTTL
	}
	if len(cfg.IDKey) == 0 {
		// crypto/rand does not fail on supported platforms.
		cfg.IDKey, _ = NewIDKey()
	}
	if cfg.Block <= 0 {
		cfg.Block = time.Second
	}
	return &Redis{c: client, cfg: cfg}
}

func (r *Redis) stream() string              { return r.cfg.Prefix + "tasks" }
func (r *Redis) deadStream() string          { return r.cfg.Prefix + "tasks:dead" }
func (r *Redis) jobKey(id string) string     { return r.cfg.Prefix + "job:" + id }
func (r *Redis) resultsKey(id string) string { return r.cfg.Prefix + "job:" + id + ":results" }
func (r *Redis) errorsKey(id string) string  { return r.cfg.Prefix + "job:" + id + ":errors" }

// ensureGroup creates the stream and consumer group once.
func (r *Redis) ensureGroup(ctx context.Context) error {
	r.groupOnce.Lock()
	defer r.groupOnce.Unlock()
	if r.groupOK {
		return nil
	}
	err := r.c.XGroupCreateMkStream(ctx, r.stream(), r.cfg.Group, "0").Err()
	if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		return redisErr("create group", err)
	}
	r.groupOK = true
	return nil
}

// Submit implements Store.
func (r *Redis) Submit(ctx context.Context, kind, owner string, items [][]byte) (string, error) {
	if len(items) == 0 {
		return "", ErrEmptyJob
	}
	if err := r.ensureGroup(ctx); err != nil {
		return "", err
	}
	now := time.Now().UTC()
	id, err := newID(r.cfg.IDKey, now)
	if err != nil {
		return "", err
	}
	err = r.c.HSet(ctx, r.jobKey(id), "kind", kind, "total", len(items),
		"created", now.Format(time.RFC3339Nano), "failed", 0, "owner", owner).Err()
	if err != nil {
		return "", redisErr("create job", err)
	}
	for start := 0; start < len(items); start += 500 {
		end := min(start+500, len(items))
		_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := start; i < end; i++ {
				p.XAdd(ctx, &redis.XAddArgs{Stream: r.stream(), Values: taskValues(Task{JobID: id, Index: i, Kind: kind, Payload: items[i]})})
			}
			return nil
		})
		if err != nil {
			return "", redisErr(fmt.Sprintf("enqueue items %d-%d", start, end), err)
		}
	}
	return id, nil
}

func taskValues(t Task) []any {
	return []any{"job", t.JobID, "idx", t.Index, "kind", t.Kind, "payload", t.Payload, "attempts", t.Attempts}
}

// parseTask decodes a stream entry; ok is false for deleted or foreign entries.
func parseTask(m redis.XMessage) (Task, bool) {
	job, _ := m.Values["job"].(string)
	idx, err1 := strconv.Atoi(fmt.Sprint(m.Values["idx"]))
	att, err2 := strconv.Atoi(fmt.Sprint(m.Values["attempts"]))
	kind, _ := m.Values["kind"].(string)
	payload, _ := m.Values["payload"].(string)
	if job == "" || err1 != nil || err2 != nil {
		return Task{}, false
	}
	return Task{JobID: job, Index: idx, Kind: kind, Payload: []byte(payload), Attempts: att, ref: m.ID}, true
}

// Status implements Store.
func (r *Redis) Status(ctx context.Context, id string) (Job, error) {
	var h *redis.MapStringStringCmd
	var n *redis.IntCmd
	var errs *redis.StringSliceCmd
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, r.jobKey(id))
		n = p.HLen(ctx, r.resultsKey(id))
		errs = p.LRange(ctx, r.errorsKey(id), 0, 99)
		return nil
	})
	if err != nil {
		return Job{}, redisErr("status "+id, err)
	}
	f := h.Val()
	if len(f) == 0 {
		return Job{}, missing(r.cfg.IDKey, id, fmt.Sprintf(
			"its results expired (they are kept %s after the job finishes) or Redis lost its data (run Redis with appendonly yes)", r.cfg.ResultTTL))
	}
	total, _ := strconv.Atoi(f["total"])
	failed, _ := strconv.Atoi(f["failed"])
	created, _ := time.Parse(time.RFC3339Nano, f["created"])
	s := api.JobStatus{ID: id, Kind: f["kind"], Total: total, Done: int(n.Val()), Failed: failed, CreatedAt: created}
	s.State = state(f["canceled"] == "1", s.Done, total)
	for _, e := range errs.Val() {
		i, msg, _ := strings.Cut(e, "\t")
		idx, _ := strconv.Atoi(i)
		s.Errors = append(s.Errors, api.JobError{Index: idx, Error: msg})
	}
	return Job{JobStatus: s, Owner: f["owner"]}, nil
}

// Results implements Store.
func (r *Redis) Results(ctx context.Context, id string, fn func([]byte) error) error {
	s, err := r.Status(ctx, id)
	if err != nil {
		return err
	}
	for start := 0; start < s.Total; start += 500 {
		end := min(start+500, s.Total)
		fields := make([]string, 0, end-start)
		for i := start; i < end; i++ {
			fields = append(fields, strconv.Itoa(i))
		}
		vals, err := r.c.HMGet(ctx, r.resultsKey(id), fields...).Result()
		if err != nil {
			return redisErr("results "+id, err)
		}
		for _, v := range vals {
			if s, ok := v.(string); ok {
				if err := fn([]byte(s)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Cancel implements Store. Tasks already queued are dropped when claimed;
// the job's keys expire after ResultTTL.
func (r *Redis) Cancel(ctx context.Context, id string) error {
	if _, err := r.Status(ctx, id); err != nil {
		return err
	}
	ttl := r.cfg.ResultTTL
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, r.jobKey(id), "canceled", 1)
		p.Expire(ctx, r.jobKey(id), ttl)
		p.Expire(ctx, r.resultsKey(id), ttl)
		p.Expire(ctx, r.errorsKey(id), ttl)
		return nil
	})
	if err != nil {
		return redisErr("cancel "+id, err)
	}
	return nil
}

// completeScript records the first outcome per item and acknowledges the
// entry atomically; when the last item is recorded the job's keys get
// their TTL. KEYS: results, job, errors, stream. ARGV: index, line, error
// text ("" on success), group, entry id, TTL in seconds.
var completeScript = redis.NewScript(`
local set = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
if set == 1 and ARGV[3] ~= '' then
  redis.call('HINCRBY', KEYS[2], 'failed', 1)
  redis.call('RPUSH', KEYS[3], ARGV[1] .. '\t' .. ARGV[3])
  redis.call('LTRIM', KEYS[3], 0, 99)
end
if set == 1 then
  local total = tonumber(redis.call('HGET', KEYS[2], 'total') or '0')
  if total > 0 and redis.call('HLEN', KEYS[1]) >= total then
    for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[6]) end
  end
end
if ARGV[5] ~= '' then
  redis.call('XACK', KEYS[4], ARGV[4], ARGV[5])
  redis.call('XDEL', KEYS[4], ARGV[5])
end
return set`)

// Complete implements Store.
func (r *Redis) Complete(ctx context.Context, t Task, o Outcome) error {
	keys := []string{r.resultsKey(t.JobID), r.jobKey(t.JobID), r.errorsKey(t.JobID), r.stream()}
	ttl := max(1, int64(r.cfg.ResultTTL/time.Second))
	err := completeScript.Run(ctx, r.c, keys, t.Index, resultLine(t.Index, o), o.Err, r.cfg.Group, t.ref, ttl).Err()
	if err != nil {
		return redisErr(fmt.Sprintf("complete %s/%d", t.JobID, t.Index), err)
	}
	return nil
}

// Fail implements Store.
func (r *Redis) Fail(ctx context.Context, t Task, cause error) error {
	t.Attempts++
	if t.Attempts >= r.cfg.MaxAttempts {
		return r.deadLetter(ctx, t, fmt.Sprintf("failed after %d attempts: %v", t.Attempts, cause))
	}
	return r.requeue(ctx, t)
}

// Release implements Store.
func (r *Redis) Release(ctx context.Context, t Task) error { return r.requeue(ctx, t) }

// requeue adds a fresh copy of t and acknowledges the old entry, in one
// MULTI/EXEC transaction.
func (r *Redis) requeue(ctx context.Context, t Task) error {
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: r.stream(), Values: taskValues(t)})
		p.XAck(ctx, r.stream(), r.cfg.Group, t.ref)
		p.XDel(ctx, r.stream(), t.ref)
		return nil
	})
	if err != nil {
		return redisErr(fmt.Sprintf("requeue %s/%d", t.JobID, t.Index), err)
	}
	return nil
}

// deadLetter copies t to the dead-letter stream and records msg as its result.
func (r *Redis) deadLetter(ctx context.Context, t Task, msg string) error {
	vals := append(taskValues(t), "error", msg)
	if err := r.c.XAdd(ctx, &redis.XAddArgs{Stream: r.deadStream(), Values: vals}).Err(); err != nil {
		return redisErr(fmt.Sprintf("dead-letter %s/%d", t.JobID, t.Index), err)
	}
	return r.Complete(ctx, t, Outcome{Err: msg})
}

// DeadLetters returns the number of entries in the dead-letter stream.
func (r *Redis) DeadLetters(ctx context.Context) (int64, error) {
	n, err := r.c.XLen(ctx, r.deadStream()).Result()
	if err != nil {
		return 0, redisErr("dead letters", err)
	}
	return n, nil
}

// Claim implements Store: first tasks abandoned by dead consumers
// (XAUTOCLAIM, at most every ClaimIdle/2), then new ones (XREADGROUP).
func (r *Redis) Claim(ctx context.Context, consumer string, max int) ([]Task, error) {
	if err := r.ensureGroup(ctx); err != nil {
		return nil, err
	}
	tasks, err := r.reclaim(ctx, consumer, max)
	if err != nil {
		return nil, err
	}
	if len(tasks) == 0 {
		res, err := r.c.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: r.cfg.Group, Consumer: consumer, Streams: []string{r.stream(), ">"},
			Count: int64(max), Block: r.cfg.Block,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			if strings.Contains(err.Error(), "NOGROUP") {
				// The stream was lost (e.g. Redis restarted without
				// persistence): recreate the group on the next call.
				r.groupOnce.Lock()
				r.groupOK = false
				r.groupOnce.Unlock()
			}
			return nil, redisErr("read group", err)
		}
		for _, s := range res {
			for _, m := range s.Messages {
				if t, ok := parseTask(m); ok {
					tasks = append(tasks, t)
				}
			}
		}
	}
	return r.dropCanceled(ctx, tasks)
}

// reclaim takes over entries idle longer than ClaimIdle; entries delivered
// MaxAttempts times or more are dead-lettered instead of retried.
func (r *Redis) reclaim(ctx context.Context, consumer string, max int) ([]Task, error) {
	r.claimMu.Lock()
	due := time.Since(r.lastClaim) >= r.cfg.ClaimIdle/2
	if due {
		r.lastClaim = time.Now()
	}
	r.claimMu.Unlock()
	if !due {
		return nil, nil
	}
	msgs, _, err := r.c.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: r.stream(), Group: r.cfg.Group, Consumer: consumer,
		MinIdle: r.cfg.ClaimIdle, Start: "0-0", Count: int64(max),
	}).Result()
	if err != nil {
		return nil, redisErr("autoclaim", err)
	}
	var tasks []Task
	for _, m := range msgs {
		t, ok := parseTask(m)
		if !ok {
			r.c.XAck(ctx, r.stream(), r.cfg.Group, m.ID)
			continue
		}
		if n := r.deliveries(ctx, m.ID); n > int64(r.cfg.MaxAttempts) {
			if err := r.deadLetter(ctx, t, fmt.Sprintf("delivered %d times without completing", n)); err != nil {
				return nil, err
			}
			continue
		}
		tasks = append(tasks, t)
	}
	return tasks, nil
}

// deliveries returns how often the pending entry id was delivered.
func (r *Redis) deliveries(ctx context.Context, id string) int64 {
	p, err := r.c.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: r.stream(), Group: r.cfg.Group, Start: id, End: id, Count: 1}).Result()
	if err != nil || len(p) == 0 {
		return 0
	}
	return p[0].RetryCount
}

// dropCanceled acknowledges tasks of cancelled jobs and returns the rest.
func (r *Redis) dropCanceled(ctx context.Context, tasks []Task) ([]Task, error) {
	if len(tasks) == 0 {
		return nil, nil
	}
	canceled := map[string]bool{}
	for _, t := range tasks {
		if _, seen := canceled[t.JobID]; !seen {
			v, err := r.c.HGet(ctx, r.jobKey(t.JobID), "canceled").Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return nil, redisErr("job state", err)
			}
			canceled[t.JobID] = v == "1"
		}
	}
	keep := tasks[:0]
	for _, t := range tasks {
		if canceled[t.JobID] {
			r.c.XAck(ctx, r.stream(), r.cfg.Group, t.ref)
			r.c.XDel(ctx, r.stream(), t.ref)
			continue
		}
		keep = append(keep, t)
	}
	return keep, nil
}

// Pending implements Store: entries in the task stream (acknowledged
// entries are deleted, so these are queued or running).
func (r *Redis) Pending(ctx context.Context) (int64, error) {
	n, err := r.c.XLen(ctx, r.stream()).Result()
	if err != nil {
		return 0, redisErr("pending", err)
	}
	return n, nil
}

// Ping implements Store.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return redisErr("ping", err)
	}
	return nil
}

// ErrNotDurable reports a Redis server configured so that a crash or
// restart loses queued jobs and results.
var ErrNotDurable = errors.New("queue: Redis is not durable")

// CheckDurable returns ErrNotDurable unless the server has append-only
// persistence on (CONFIG GET appendonly is "yes"). The error says what to
// set. A server that refuses CONFIG (a managed service may rename it)
// gives an error too, since durability cannot be checked.
func CheckDurable(ctx context.Context, c redis.UniversalClient) error {
	v, err := c.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		return fmt.Errorf("%w: cannot check persistence (CONFIG GET appendonly: %v); "+
			"make sure appendonly is yes on the server", ErrNotDurable, err)
	}
	if v["appendonly"] != "yes" {
		return fmt.Errorf("%w: appendonly is %q, so a Redis crash or restart loses queued jobs and their results; "+
			"set `appendonly yes` in redis.conf (or run `redis-cli CONFIG SET appendonly yes` and `CONFIG REWRITE`)",
			ErrNotDurable, v["appendonly"])
	}
	return nil
}

// redisErr wraps err from Redis with op. Errors other than a reply from a
// working server (connection refused, timeouts, LOADING, READONLY,
// MASTERDOWN) also match ErrUnavailable.
func redisErr(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("queue: %s: %w", op, err)
	}
	var re redis.Error
	if errors.As(err, &re) && !errors.Is(err, redis.ErrClosed) {
		msg := re.Error()
		transient := strings.HasPrefix(msg, "LOADING") || strings.HasPrefix(msg, "READONLY") ||
			strings.HasPrefix(msg, "MASTERDOWN") || strings.HasPrefix(msg, "CLUSTERDOWN") || strings.HasPrefix(msg, "TRYAGAIN")
		if !transient {
			return fmt.Errorf("queue: %s: %w", op, err)
		}
	}
	return fmt.Errorf("queue: %s: %w: %w", op, ErrUnavailable, err)
}
