package queue

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/medgr2/medgr2/server/api"
)

// Memory is the in-process Store: jobs live as long as the process.
type Memory struct {
	maxAttempts int           // attempts before dead-lettering
	block       time.Duration // longest Claim wait

	mu    sync.Mutex         // guards everything below
	jobs  map[string]*memJob // by id
	queue []Task             // tasks waiting, FIFO
	dead  []Task             // dead-lettered tasks
	wake  chan struct{}      // closed and replaced when tasks are added
}

// memJob is one job's state.
type memJob struct {
	status   api.JobStatus  // counts kept current
	results  map[int][]byte // index → JSONL line
	canceled bool
}

// NewMemory returns an in-process store; maxAttempts defaults to 3 and
// block (the longest Claim wait) to 1s.
func NewMemory(maxAttempts int, block time.Duration) *Memory {
	if maxAttempts <= 0 {
		maxAttempts = 3
	}
	if block <= 0 {
		block = time.Second
	}
	return &Memory{maxAttempts: maxAttempts, block: block, jobs: map[string]*memJob{}, wake: make(chan struct{})}
}

// Submit implements Store.
func (m *Memory) Submit(_ context.Context, kind string, items [][]byte) (string, error) {
	if len(items) == 0 {
		return "", ErrEmptyJob
	}
	id, err := newID()
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.jobs[id] = &memJob{
		status:  api.JobStatus{ID: id, Kind: kind, State: api.JobQueued, Total: len(items), CreatedAt: time.Now().UTC()},
		results: map[int][]byte{},
	}
	for i, it := range items {
		m.queue = append(m.queue, Task{JobID: id, Index: i, Kind: kind, Payload: it})
	}
	m.signal()
	return id, nil
}

// signal wakes every waiting Claim. The caller holds mu.
func (m *Memory) signal() {
	close(m.wake)
	m.wake = make(chan struct{})
}

// Status implements Store.
func (m *Memory) Status(_ context.Context, id string) (api.JobStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return api.JobStatus{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	s := j.status
	s.Errors = append([]api.JobError(nil), s.Errors...)
	s.State = state(j.canceled, s.Done, s.Total)
	return s, nil
}

// Results implements Store.
func (m *Memory) Results(_ context.Context, id string, fn func([]byte) error) error {
	m.mu.Lock()
	j, ok := m.jobs[id]
	if !ok {
		m.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	lines := make([][]byte, 0, len(j.results))
	for i := range j.status.Total {
		if l, ok := j.results[i]; ok {
			lines = append(lines, l)
		}
	}
	m.mu.Unlock()
	for _, l := range lines {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

// Cancel implements Store.
func (m *Memory) Cancel(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	j.canceled = true
	keep := m.queue[:0]
	for _, t := range m.queue {
		if t.JobID != id {
			keep = append(keep, t)
		}
	}
	m.queue = keep
	return nil
}

// Claim implements Store.
func (m *Memory) Claim(ctx context.Context, _ string, max int) ([]Task, error) {
	timer := time.NewTimer(m.block)
	defer timer.Stop()
	for {
		m.mu.Lock()
		if len(m.queue) > 0 {
			n := min(max, len(m.queue))
			out := append([]Task(nil), m.queue[:n]...)
			m.queue = m.queue[n:]
			m.mu.Unlock()
			return out, nil
		}
		wake := m.wake
		m.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Complete implements Store.
func (m *Memory) Complete(_ context.Context, t Task, o Outcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[t.JobID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, t.JobID)
	}
	if _, dup := j.results[t.Index]; dup {
		return nil
	}
	j.results[t.Index] = resultLine(t.Index, o)
	j.status.Done++
	if o.Err != "" {
		j.status.Failed++
		if len(j.status.Errors) < 100 {
			j.status.Errors = append(j.status.Errors, api.JobError{Index: t.Index, Error: o.Err})
		}
	}
	return nil
}

// Fail implements Store.
func (m *Memory) Fail(ctx context.Context, t Task, cause error) error {
	t.Attempts++
	if t.Attempts >= m.maxAttempts {
		m.mu.Lock()
		m.dead = append(m.dead, t)
		m.mu.Unlock()
		return m.Complete(ctx, t, Outcome{Err: fmt.Sprintf("failed after %d attempts: %v", t.Attempts, cause)})
	}
	return m.Release(ctx, t)
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, t Task) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if j, ok := m.jobs[t.JobID]; ok && j.canceled {
		return nil
	}
	m.queue = append(m.queue, t)
	m.signal()
	return nil
}

// Dead returns the dead-lettered tasks.
func (m *Memory) Dead() []Task {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Task(nil), m.dead...)
}
