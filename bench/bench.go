package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"
)

// ErrNotLoopback reports a target outside the loopback interface; bench
// never loads other hosts.
var ErrNotLoopback = errors.New("bench: target must be a loopback address")

// Config describes one load run. Zero fields take the defaults.
type Config struct {
	Name     string        // label in the report; default the mode
	URL      string        // server base URL on loopback, e.g. http://127.0.0.1:8080
	Path     string        // endpoint; default /v1/vqa
	Body     []byte        // JSON request body sent every time
	APIKey   string        // sent as a bearer token when not empty
	Clients  int           // closed-loop concurrency; default 1
	Rate     float64       // open loop at this many requests/s when > 0
	Requests int           // stop after this many requests; default 1000
	Duration time.Duration // stop after this long; default 30s
	Timeout  time.Duration // per request; default 30s
}

// Report summarises a run. Latencies are in milliseconds.
type Report struct {
	Name       string         `json:"name"`
	Mode       string         `json:"mode"` // "closed", "open" or "direct"
	Clients    int            `json:"clients,omitempty"`
	Rate       float64        `json:"rate,omitempty"`
	BatchSize  int            `json:"batch_size,omitempty"` // direct runs
	Requests   int            `json:"requests"`             // sent (or batches, for direct)
	Items      int            `json:"items"`                // items answered successfully
	Drained    int            `json:"drained,omitempty"`    // requests in flight at the deadline, waited for and counted like the rest
	Errors     int            `json:"errors"`
	ErrorsBy   map[string]int `json:"errors_by,omitempty"` // status code or error class → count
	ElapsedS   float64        `json:"elapsed_s"`
	Throughput float64        `json:"throughput"` // successful items per second
	MeanMS     float64        `json:"mean_ms"`
	P50MS      float64        `json:"p50_ms"`
	P90MS      float64        `json:"p90_ms"`
	P99MS      float64        `json:"p99_ms"`
	MaxMS      float64        `json:"max_ms"`
}

func (c *Config) defaults() error {
	if c.Path == "" {
		c.Path = "/v1/vqa"
	}
	if c.Clients <= 0 {
		c.Clients = 1
	}
	if c.Requests <= 0 {
		c.Requests = 1000
	}
	if c.Duration <= 0 {
		c.Duration = 30 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bench: bad URL %q: %v", c.URL, err)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%w: %s", ErrNotLoopback, host)
	}
	return nil
}

// sample is one finished request.
type sample struct {
	lat     time.Duration
	err     string // "" on success, else the status code or error class
	drained bool   // finished after the deadline that stopped new requests
}

// Run sends requests as cfg says and reports on them. cfg.Duration stops
// new requests; those in flight then are drained: waited for (each up to
// cfg.Timeout) and counted like the others, not as errors, so a deadline
// does not turn slow answers into failures. Cancelling ctx cancels every
// request; those count as "cancelled" errors.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.defaults(); err != nil {
		return Report{}, err
	}
	stop, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: max(cfg.Clients, 64), MaxConnsPerHost: 0}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}
	target := cfg.URL + cfg.Path
	samples := make(chan sample, cfg.Requests)
	start := time.Now()
	l := loop{ctx: ctx, stop: stop, cfg: cfg, client: client, target: target, out: samples}
	if cfg.Rate > 0 {
		l.open()
	} else {
		l.closed()
	}
	elapsed := time.Since(start)
	close(samples)
	var all []sample
	for s := range samples {
		all = append(all, s)
	}
	mode := "closed"
	if cfg.Rate > 0 {
		mode = "open"
	}
	rep := summarise(all, elapsed, 1)
	rep.Name, rep.Mode, rep.Clients, rep.Rate = cfg.Name, mode, cfg.Clients, cfg.Rate
	if rep.Name == "" {
		rep.Name = mode
	}
	return rep, nil
}

// loop is one run's request loop.
type loop struct {
	ctx    context.Context // the caller's: cancels requests
	stop   context.Context // done at the deadline: no new requests
	cfg    Config
	client *http.Client
	target string
	out    chan<- sample
}

// closed runs cfg.Clients workers that share the request budget.
func (l loop) closed() {
	budget := make(chan struct{}, l.cfg.Requests)
	for range l.cfg.Requests {
		budget <- struct{}{}
	}
	close(budget)
	var wg sync.WaitGroup
	for range l.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range budget {
				if l.stop.Err() != nil {
					return
				}
				l.out <- l.send()
			}
		}()
	}
	wg.Wait()
}

// open starts one request every 1/Rate seconds until the budget or the
// time is spent, whatever the latency.
func (l loop) open() {
	tick := time.NewTicker(time.Duration(float64(time.Second) / l.cfg.Rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	for range l.cfg.Requests {
		select {
		case <-l.stop.Done():
		case <-tick.C:
			wg.Add(1)
			go func() { defer wg.Done(); l.out <- l.send() }()
			continue
		}
		break
	}
	wg.Wait()
}

// send posts one request and times it.
func (l loop) send() sample {
	req, err := http.NewRequestWithContext(l.ctx, http.MethodPost, l.target, bytes.NewReader(l.cfg.Body))
	if err != nil {
		return sample{err: "request"}
	}
	req.Header.Set("Content-Type", "application/json")
	if l.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+l.cfg.APIKey)
	}
	t0 := time.Now()
	resp, err := l.client.Do(req)
	if err != nil {
		if l.ctx.Err() != nil {
			return sample{lat: time.Since(t0), err: "cancelled"}
		}
		return sample{lat: time.Since(t0), err: "transport"}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s := sample{lat: time.Since(t0), drained: l.stop.Err() != nil}
	if resp.StatusCode != http.StatusOK {
		s.err = strconv.Itoa(resp.StatusCode)
	}
	return s
}

// summarise builds a report; each success counts itemsPer items.
func summarise(all []sample, elapsed time.Duration, itemsPer int) Report {
	rep := Report{Requests: len(all), ElapsedS: elapsed.Seconds(), ErrorsBy: map[string]int{}}
	var lats []time.Duration
	var sum time.Duration
	for _, s := range all {
		if s.drained {
			rep.Drained++
		}
		if s.err != "" {
			rep.Errors++
			rep.ErrorsBy[s.err]++
			continue
		}
		rep.Items += itemsPer
		lats = append(lats, s.lat)
		sum += s.lat
	}
	if len(rep.ErrorsBy) == 0 {
		rep.ErrorsBy = nil
	}
	if elapsed > 0 {
		rep.Throughput = float64(rep.Items) / elapsed.Seconds()
	}
	if len(lats) == 0 {
		return rep
	}
	slices.Sort(lats)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	q := func(p float64) float64 { return ms(lats[min(len(lats)-1, int(p*float64(len(lats))))]) }
	rep.MeanMS = ms(sum / time.Duration(len(lats)))
	rep.P50MS, rep.P90MS, rep.P99MS, rep.MaxMS = q(0.50), q(0.90), q(0.99), ms(lats[len(lats)-1])
	return rep
}

// Direct calls run(ctx, batchSize) serially until items items are done or
// d passes: the raw model baseline without the server. Latencies are per
// batch. A batch running when d passes is drained (finished and counted),
// as in Run; cancelling ctx cancels it.
func Direct(ctx context.Context, name string, batchSize, items int, d time.Duration, run func(ctx context.Context, n int) error) Report {
	if batchSize <= 0 {
		batchSize = 1
	}
	stop, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var all []sample
	start := time.Now()
	for done := 0; done < items && stop.Err() == nil; done += batchSize {
		t0 := time.Now()
		s := sample{}
		if err := run(ctx, batchSize); err != nil {
			s.err = "model"
			if ctx.Err() != nil {
				s.err = "cancelled"
			}
		}
		s.lat, s.drained = time.Since(t0), stop.Err() != nil
		all = append(all, s)
	}
	rep := summarise(all, time.Since(start), batchSize)
	rep.Name, rep.Mode, rep.BatchSize = name, "direct", batchSize
	return rep
}

// WriteTable prints reports as an aligned table, one line per report.
func WriteTable(w io.Writer, reports []Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "name\tmode\tconc\treqs\titems\terrors\tdrained\titems/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\t")
	for _, r := range reports {
		conc := strconv.Itoa(r.Clients)
		if r.Mode == "open" {
			conc = fmt.Sprintf("%g/s", r.Rate)
		} else if r.Mode == "direct" {
			conc = "b" + strconv.Itoa(r.BatchSize)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", r.Name, r.Mode, conc, r.Requests, r.Items,
			r.Errors, r.Drained, r.Throughput, r.P50MS, r.P90MS, r.P99MS, r.MaxMS)
	}
	return tw.Flush()
}
