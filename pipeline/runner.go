package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// stage is one resumable step of the loop.
type stage struct {
	name string   // unique, slash-separated ("s1/round-2"); also its folder under OutDir/stages
	deps []string // stages whose outputs it reads (their hashes enter its hash)
	conf any      // the config it depends on
	code []string // the code units it runs (CodeLoop, …); their identities enter its hash
	// run does the work, writing outputs into dir (a fresh temporary folder
	// renamed into place when run succeeds), and returns a JSON-able
	// summary kept in the state file.
	run func(ctx context.Context, dir string) (any, error)
}

// Options configure a Pipeline besides its Config.
type Options struct {
	// Progress receives stage lines and progress bars; nil discards them.
	Progress io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Code identifies the code each stage runs (see CodeLoop): a stage
	// whose code's identity changed reruns, and so does every stage that
	// reads its outputs. Nil means SameCode(BuildIdentity()).
	Code CodeFunc
	// Jobs is how many stages may run at once, as their dependencies
	// allow. 0 or 1 runs them one at a time, in plan order. A stage's
	// outputs depend only on the stages it reads, never on the schedule,
	// but the Backend must then be safe for concurrent use and each job
	// should get its share of the cores (ortbackend.Options.Threads).
	Jobs int
}

// Pipeline runs the MedGR² loop described by a Config with a Backend.
type Pipeline struct {
	cfg    *Config
	be     Backend
	out    io.Writer
	now    func() time.Time
	jobs   int
	stages []stage
	hashes map[string]string
	// ran and skipped list the stages of the last Run, in order.
	ran, skipped []string
}

// New returns a pipeline for cfg (which must be normalised: LoadConfig or
// Config.Normalize) running models through be.
func New(cfg *Config, be Backend, opts Options) (*Pipeline, error) {
	if cfg == nil || be == nil {
		return nil, configError("nil config or backend")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Pipeline{cfg: cfg, be: be, out: opts.Progress, now: opts.Now, jobs: max(1, opts.Jobs)}
	if p.out == nil {
		p.out = io.Discard
	} else if p.jobs > 1 {
		p.out = &lockedWriter{w: p.out}
	}
	if p.now == nil {
		p.now = time.Now
	}
	code := opts.Code
	if code == nil {
		code = SameCode(BuildIdentity())
	}
	p.stages = p.plan()
	p.hashes = map[string]string{}
	for _, s := range p.stages {
		deps := make([]string, len(s.deps))
		for i, d := range s.deps {
			h, ok := p.hashes[d]
			if !ok {
				return nil, fmt.Errorf("pipeline: stage %s depends on %s, planned later", s.name, d)
			}
			deps[i] = h
		}
		ids := make([]string, len(s.code))
		for i, u := range s.code {
			ids[i] = u + "=" + code(u)
		}
		p.hashes[s.name] = hashOf(s.name, s.conf, deps, ids)
	}
	return p, nil
}

// Stages returns the planned stage names in run order.
func (p *Pipeline) Stages() []string {
	out := make([]string, len(p.stages))
	for i, s := range p.stages {
		out[i] = s.name
	}
	return out
}

// Ran and Skipped return the stages the last Run executed and skipped.
func (p *Pipeline) Ran() []string     { return p.ran }
func (p *Pipeline) Skipped() []string { return p.skipped }

// stageDir returns the folder of a stage's outputs.
func (p *Pipeline) stageDir(name string) string {
	return filepath.Join(p.cfg.OutDir, "stages", filepath.FromSlash(name))
}

// Run runs every stage, skipping those the state file records as
// finished with the same hash (and whose folder exists). A stage's hash
// covers its name, its config, the hashes of the stages it reads and the
// identity of the code it runs (Options.Code). Up to Options.Jobs stages
// run at once, each as soon as the stages it reads are done, the earliest
// in plan order first. Each finished stage is recorded atomically, so an
// interrupted run resumes from the stages that finished; when one fails,
// the others already running finish (and are recorded) before Run returns
// the first error. It returns the final report's path.
func (p *Pipeline) Run(ctx context.Context) (string, error) {
	if err := os.MkdirAll(p.cfg.OutDir, 0o755); err != nil {
		return "", fmt.Errorf("pipeline: %w", err)
	}
	statePath := filepath.Join(p.cfg.OutDir, StateFile)
	st, err := loadState(statePath)
	if err != nil {
		return "", err
	}
	p.ran, p.skipped = nil, nil
	start := p.now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type result struct {
		i      int
		raw    json.RawMessage
		t0, t1 time.Time
		err    error
	}
	const (
		waiting = iota
		running
		done
	)
	index := make(map[string]int, len(p.stages))
	for i, s := range p.stages {
		index[s.name] = i
	}
	status := make([]int, len(p.stages))
	ready := func(i int) bool {
		for _, d := range p.stages[i].deps {
			if status[index[d]] != done {
				return false
			}
		}
		return true
	}
	results := make(chan result)
	var ran []int
	var firstErr error
	inFlight := 0
	for {
		// Start (or skip) every stage whose inputs are done, in plan order,
		// while a job is free. Plan order is topological, so one pass also
		// skips chains of finished stages.
		for i, s := range p.stages {
			if firstErr != nil || inFlight >= p.jobs {
				break
			}
			if status[i] != waiting || !ready(i) {
				continue
			}
			if err := ctx.Err(); err != nil {
				firstErr = fmt.Errorf("pipeline: %w", err)
				break
			}
			dir, h := p.stageDir(s.name), p.hashes[s.name]
			if rec, ok := st.Stages[s.name]; ok && rec.Hash == h && exists(dir) {
				fmt.Fprintf(p.out, "[%d/%d] %s: done (%.0fs), skipped\n", i+1, len(p.stages), s.name, rec.Seconds)
				p.skipped = append(p.skipped, s.name)
				status[i] = done
				continue
			}
			fmt.Fprintf(p.out, "[%d/%d] %s …\n", i+1, len(p.stages), s.name)
			status[i] = running
			inFlight++
			go func() {
				r := result{i: i, t0: p.now()}
				sum, err := p.runStage(ctx, s, dir)
				if err == nil {
					r.raw, err = json.Marshal(sum)
				}
				r.t1, r.err = p.now(), err
				results <- r
			}()
		}
		if inFlight == 0 {
			break
		}
		r := <-results
		inFlight--
		s := p.stages[r.i]
		if r.err != nil {
			if firstErr == nil {
				firstErr = &StageError{Stage: s.name, Err: r.err}
				cancel()
			}
			continue
		}
		secs := r.t1.Sub(r.t0).Seconds()
		st.Stages[s.name] = StageRecord{Hash: p.hashes[s.name], Finished: r.t1.UTC(), Seconds: secs, Summary: r.raw}
		if err := st.save(statePath); err != nil {
			if firstErr == nil {
				firstErr = &StageError{Stage: s.name, Err: err}
				cancel()
			}
			continue
		}
		fmt.Fprintf(p.out, "[%d/%d] %s: finished in %.1fs\n", r.i+1, len(p.stages), s.name, secs)
		status[r.i] = done
		ran = append(ran, r.i)
	}
	slices.Sort(ran)
	for _, i := range ran {
		p.ran = append(p.ran, p.stages[i].name)
	}
	if firstErr != nil {
		return "", firstErr
	}
	fmt.Fprintf(p.out, "pipeline: %d stages run, %d skipped, %.1fs\n", len(p.ran), len(p.skipped), p.now().Sub(start).Seconds())
	return filepath.Join(p.cfg.OutDir, ReportFile), nil
}

// lockedWriter serialises the writes of stages that run at once.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// runStage runs s into a fresh temporary folder and renames it to dir.
func (p *Pipeline) runStage(ctx context.Context, s stage, dir string) (any, error) {
	tmp := dir + ".partial"
	for _, d := range []string{tmp, dir} {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("pipeline: clear %s: %w", d, err)
		}
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	sum, err := s.run(ctx, tmp)
	if err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(tmp, SummaryFile), sum); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("pipeline: finish %s: %w", s.name, err)
	}
	return sum, nil
}

// SummaryFile is the name of each stage's summary inside its folder.
const SummaryFile = "summary.json"

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
