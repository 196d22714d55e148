package bench

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/medgr2/medgr2/server/api"
)

// ErrNotLoopback reports a target outside the loopback interface; bench
// never loads other hosts.
var ErrNotLoopback = errors.New("bench: target must be a loopback address")

// Config describes one load run. Zero fields take the defaults.
type Config struct {
	Name string // label in the report; default the mode
	URL  string // server base URL on loopback, e.g. http://127.0.0.1:8080
	Path string // endpoint; default /v1/vqa
	// Bodies are the JSON request bodies, sent in turn: the i-th request
	// of a run sends Bodies[i%len(Bodies)]. None: an empty body.
	Bodies   [][]byte
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
	Mode       string         `json:"mode"`              // "closed", "open" or "direct"
	Clients    int            `json:"clients,omitempty"` // closed-loop clients, or concurrent callers of a direct run
	Rate       float64        `json:"rate,omitempty"`
	BatchSize  int            `json:"batch_size,omitempty"` // direct runs: the largest batch
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
	P95MS      float64        `json:"p95_ms"`
	P99MS      float64        `json:"p99_ms"`
	MaxMS      float64        `json:"max_ms"`
	// CPU is this process's CPU use during the run: the load generator
	// and, when the server runs in the same process, the server.
	CPU CPU `json:"cpu"`
	// Stages are the means of the server's per-request timing.
	Stages Stages `json:"stages"`
	// Padding counts the prompt token slots of the server's batches
	// during the run (set by RunSuite from /metrics).
	Padding Padding `json:"padding"`
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
	err     string      // "" on success, else the status code or error class
	drained bool        // finished after the deadline that stopped new requests
	items   int         // items a success answers (1 per request; a direct batch's size)
	timing  *api.Timing // the response's timing field, when it had one
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
	cpu := startCPU()
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
	rep := summarise(all, elapsed)
	rep.CPU = cpu.stop(elapsed)
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

// closed runs cfg.Clients workers that share the request budget; the
// i-th request taken sends the i-th body.
func (l loop) closed() {
	budget := make(chan int, l.cfg.Requests)
	for i := range l.cfg.Requests {
		budget <- i
	}
	close(budget)
	var wg sync.WaitGroup
	for range l.cfg.Clients {
		wg.Go(func() {
			for i := range budget {
				if l.stop.Err() != nil {
					return
				}
				l.out <- l.send(i)
			}
		})
	}
	wg.Wait()
}

// open starts one request every 1/Rate seconds until the budget or the
// time is spent, whatever the latency.
func (l loop) open() {
	tick := time.NewTicker(time.Duration(float64(time.Second) / l.cfg.Rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	for i := range l.cfg.Requests {
		select {
		case <-l.stop.Done():
		case <-tick.C:
			wg.Go(func() { l.out <- l.send(i) })
			continue
		}
		break
	}
	wg.Wait()
}

// body returns the body of the i-th request.
func (l loop) body(i int) []byte {
	if len(l.cfg.Bodies) == 0 {
		return nil
	}
	return l.cfg.Bodies[i%len(l.cfg.Bodies)]
}

// send posts the i-th request, times it and reads the timing field of a
// successful JSON answer.
func (l loop) send(i int) sample {
	req, err := http.NewRequestWithContext(l.ctx, http.MethodPost, l.target, bytes.NewReader(l.body(i)))
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
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	s := sample{lat: time.Since(t0), drained: l.stop.Err() != nil, items: 1}
	switch {
	case err != nil:
		s.err = "transport"
	case resp.StatusCode != http.StatusOK:
		s.err = strconv.Itoa(resp.StatusCode)
	default:
		s.timing = responseTiming(body)
	}
	return s
}

// responseTiming returns the "timing" object of a JSON answer (see
// api.Timing), or nil when it has none.
func responseTiming(body []byte) *api.Timing {
	var r struct {
		Timing *api.Timing `json:"timing"`
	}
	if json.Unmarshal(body, &r) != nil {
		return nil
	}
	return r.Timing
}

// summarise builds a report from a run's samples.
func summarise(all []sample, elapsed time.Duration) Report {
	rep := Report{Requests: len(all), ElapsedS: elapsed.Seconds(), ErrorsBy: map[string]int{}}
	var lats []time.Duration
	var sum time.Duration
	var st stageSum
	for _, s := range all {
		if s.drained {
			rep.Drained++
		}
		if s.err != "" {
			rep.Errors++
			rep.ErrorsBy[s.err]++
			continue
		}
		rep.Items += s.items
		lats = append(lats, s.lat)
		sum += s.lat
		st.add(s)
	}
	if len(rep.ErrorsBy) == 0 {
		rep.ErrorsBy = nil
	}
	if elapsed > 0 {
		rep.Throughput = float64(rep.Items) / elapsed.Seconds()
	}
	rep.Stages = st.means()
	if len(lats) == 0 {
		return rep
	}
	slices.Sort(lats)
	q := func(p float64) float64 { return ms(lats[min(len(lats)-1, int(p*float64(len(lats))))]) }
	rep.MeanMS = ms(sum / time.Duration(len(lats)))
	rep.P50MS, rep.P90MS, rep.P95MS, rep.P99MS, rep.MaxMS = q(0.50), q(0.90), q(0.95), q(0.99), ms(lats[len(lats)-1])
	return rep
}

// ms converts d to milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// WriteTable prints reports as an aligned table, one line per report:
// concurrency (closed-loop clients, open-loop rate, or direct callers ×
// largest batch), throughput, latency quantiles, CPU use and the padding
// share of the server's batches.
func WriteTable(w io.Writer, reports []Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "name\tmode\tconc\treqs\titems\terrors\tdrained\titems/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\tcpu\tpadding\t")
	for _, r := range reports {
		conc := strconv.Itoa(r.Clients)
		if r.Mode == "open" {
			conc = fmt.Sprintf("%g/s", r.Rate)
		} else if r.Mode == "direct" {
			conc = fmt.Sprintf("%d×b%d", r.Clients, r.BatchSize)
		}
		pad := "-"
		if r.Padding.Slots() > 0 {
			pad = fmt.Sprintf("%.1f%%", 100*r.Padding.Share)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f%%\t%s\t\n", r.Name, r.Mode, conc, r.Requests, r.Items,
			r.Errors, r.Drained, r.Throughput, r.P50MS, r.P95MS, r.P99MS, r.MaxMS, 100*r.CPU.Util, pad)
	}
	return tw.Flush()
}
