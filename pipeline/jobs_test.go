package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

// traceStages wraps every stage of p so that it logs when it starts and
// ends, and counts how many run at once.
type stageTrace struct {
	mu       sync.Mutex
	events   []string // "+name" at start, "-name" at end
	inFlight int
	peak     int
}

func traceStages(p *Pipeline) *stageTrace {
	tr := &stageTrace{}
	for i := range p.stages {
		s := p.stages[i]
		run := s.run
		p.stages[i].run = func(ctx context.Context, dir string) (any, error) {
			tr.mu.Lock()
			tr.events = append(tr.events, "+"+s.name)
			tr.inFlight++
			tr.peak = max(tr.peak, tr.inFlight)
			tr.mu.Unlock()
			time.Sleep(2 * time.Millisecond) // give others the chance to overlap
			sum, err := run(ctx, dir)
			tr.mu.Lock()
			tr.events = append(tr.events, "-"+s.name)
			tr.inFlight--
			tr.mu.Unlock()
			return sum, err
		}
	}
	return tr
}

// checkOrder fails when a stage started before a stage it reads ended.
func (tr *stageTrace) checkOrder(t *testing.T, p *Pipeline) {
	t.Helper()
	at := map[string]int{}
	for i, e := range tr.events {
		at[e] = i
	}
	for _, s := range p.stages {
		start, ok := at["+"+s.name]
		if !ok {
			continue
		}
		for _, d := range s.deps {
			if end, ok := at["-"+d]; ok && end > start {
				t.Errorf("%s started before %s, which it reads, ended", s.name, d)
			}
		}
	}
}

// TestJobsSameResults runs the loop (with every pretrained base) one stage at a
// time and three at once: the results are the same, no stage starts
// before its inputs are done, and no more than Jobs stages run at once.
func TestJobsSameResults(t *testing.T) {
	var tables []any
	for _, jobs := range []int{1, 3} {
		cfg := pretrainConfig(t)
		cfg.Seeds = []uint64{1, 2}
		cfg.PolicyFromSeed = true // the rows that wait for the seed row
		cfg.Pretrain.Vision = VisionPretrainConfig{Steps: 5}
		cfg.Pretrain.Reward = TrainOptions{Epochs: 1, BatchSize: 8, LearningRate: 1e-3}
		cfg.Probe.Limit = 4
		p, err := New(cfg, newFake(cfg.OutDir), Options{Jobs: jobs, Progress: &bytes.Buffer{}})
		if err != nil {
			t.Fatal(err)
		}
		tr := traceStages(p)
		if _, err := p.Run(context.Background()); err != nil {
			t.Fatalf("jobs %d: %v", jobs, err)
		}
		tr.checkOrder(t, p)
		t.Logf("jobs %d: peak %d stages at once", jobs, tr.peak)
		if tr.peak > jobs {
			t.Errorf("jobs %d: %d stages ran at once", jobs, tr.peak)
		}
		if jobs == 1 && !slices.Equal(p.Ran(), p.Stages()) {
			t.Errorf("jobs 1 ran %v, want the plan order %v", p.Ran(), p.Stages())
		}
		if len(p.Ran()) != len(p.Stages()) {
			t.Errorf("jobs %d ran %d of %d stages", jobs, len(p.Ran()), len(p.Stages()))
		}
		res, err := LoadResults(cfg.OutDir)
		if err != nil {
			t.Fatal(err)
		}
		if res.Elapsed <= 0 || res.Elapsed > res.Total+1 {
			t.Errorf("jobs %d: elapsed %.3f s, stages summed %.3f s", jobs, res.Elapsed, res.Total)
		}
		for _, part := range []string{PretrainPartVQA, PretrainPartGenerator, PretrainPartReward, PretrainPartEval} {
			if _, ok := res.PretrainParts[part]; !ok {
				t.Errorf("jobs %d: pretrain part %s not timed: %v", jobs, part, res.PretrainParts)
			}
		}
		tables = append(tables, []any{res.Table, res.Rounds, res.ImageUse, res.Probe})
	}
	if !reflect.DeepEqual(tables[0], tables[1]) {
		t.Error("results with 3 jobs differ from those with 1")
	}
}

// TestJobsFailureKeepsFinishedStages checks that when one stage fails
// while others run, those finish and are recorded, the first error is
// returned, and a resumed run reruns only what did not finish.
func TestJobsFailureKeepsFinishedStages(t *testing.T) {
	cfg := testConfig(t)
	be := newFake(cfg.OutDir)
	be.failAt["GRPO"] = 1 // the first GRPO stage (of two seeds) fails
	p, err := New(cfg, be, Options{Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(context.Background())
	var se *StageError
	if !errors.Is(err, errInjected) || !errors.As(err, &se) {
		t.Fatalf("err = %v, want the injected failure", err)
	}
	st, err := loadState(filepath.Join(cfg.OutDir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range p.Ran() {
		if _, ok := st.Stages[name]; !ok {
			t.Errorf("%s ran but is not recorded", name)
		}
	}
	if _, ok := st.Stages[se.Stage]; ok {
		t.Errorf("failed stage %s recorded", se.Stage)
	}
	if _, err := os.Stat(p.stageDir(StageReport)); err == nil {
		t.Error("the report ran after a failure")
	}
	done := slices.Clone(p.Ran())
	p2, _ := New(cfg, be, Options{Jobs: 2})
	if _, err := p2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, name := range done {
		if slices.Contains(p2.Ran(), name) {
			t.Errorf("%s finished in the first run but ran again", name)
		}
	}
	if !slices.Contains(p2.Ran(), se.Stage) || !slices.Contains(p2.Ran(), StageReport) {
		t.Errorf("resumed run ran %v, want %s and the report among them", p2.Ran(), se.Stage)
	}
}
