package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/batch"
	"github.com/medgr2/medgr2/server/queue"
)

// maxJobItems bounds one job.
const maxJobItems = 100_000

func (s *Server) handleJobSubmit(c *gin.Context) {
	kind, lines, err := s.readJob(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	id, err := s.cfg.Jobs.Submit(c.Request.Context(), kind, c.GetString(ctxOwner), lines)
	if err != nil {
		s.fail(c, err)
		return
	}
	st, err := s.cfg.Jobs.Status(c.Request.Context(), id)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/v1/jobs/"+id)
	c.JSON(http.StatusAccepted, st.JobStatus)
}

// readJob reads a JSONL body (?kind=) or a JobRequest naming a file under
// JobsDir, and validates every line up front.
func (s *Server) readJob(c *gin.Context) (string, [][]byte, error) {
	ct := c.ContentType()
	var kind string
	var r io.Reader
	if ct == "application/json" {
		var req api.JobRequest
		if err := decodeJSON(c, &req); err != nil {
			return "", nil, err
		}
		if req.Kind != api.JobKindScore && req.Kind != api.JobKindVQA {
			return "", nil, badField("kind", "must be %q or %q, got %q", api.JobKindScore, api.JobKindVQA, req.Kind)
		}
		f, err := s.openJobFile(req.Path)
		if err != nil {
			return "", nil, err
		}
		defer f.Close()
		kind, r = req.Kind, f
	} else {
		kind, r = c.Query("kind"), c.Request.Body
	}
	if kind != api.JobKindScore && kind != api.JobKindVQA {
		return "", nil, badField("kind", "must be %q or %q, got %q", api.JobKindScore, api.JobKindVQA, kind)
	}
	lines, err := s.readJobLines(kind, r)
	return kind, lines, err
}

// openJobFile opens a job file confined to JobsDir.
func (s *Server) openJobFile(path string) (*os.File, error) {
	if s.cfg.JobsDir == "" {
		return nil, badField("path", "server-side job files are disabled (start the server with --jobs-dir)")
	}
	if path == "" {
		return nil, badField("path", "required (or send a JSONL body with Content-Type application/x-ndjson)")
	}
	root, err := os.OpenRoot(s.cfg.JobsDir)
	if err != nil {
		return nil, fmt.Errorf("server: jobs dir: %w", err)
	}
	defer root.Close()
	f, err := root.Open(filepath.Clean(path))
	if err != nil {
		return nil, badField("path", "cannot open %q under the jobs directory: %v", path, err)
	}
	return f, nil
}

// readJobLines splits JSONL and checks every line without decoding images.
func (s *Server) readJobLines(kind string, r io.Reader) ([][]byte, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), int(s.cfg.MaxBody))
	var lines [][]byte
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := checkJobLine(kind, line); err != nil {
			return nil, badField(fmt.Sprintf("line %d", n), "%v", err)
		}
		if len(lines) == maxJobItems {
			return nil, badField("", "more than %d items", maxJobItems)
		}
		lines = append(lines, bytes.Clone(line))
	}
	if err := sc.Err(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: limit %d bytes", ErrBodyTooLarge, mbe.Limit)
		}
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: a JSONL line is longer than the %d-byte body limit", ErrBodyTooLarge, s.cfg.MaxBody)
		}
		return nil, badField("", "reading JSONL: %v", err)
	}
	if len(lines) == 0 {
		return nil, badField("", "job has no items")
	}
	return lines, nil
}

// checkJobLine validates one item's fields (images are checked when run).
func checkJobLine(kind string, line []byte) error {
	switch kind {
	case api.JobKindVQA:
		var it api.VQARequest
		if err := json.Unmarshal(line, &it); err != nil {
			return fmt.Errorf("malformed JSON: %w", err)
		}
		if it.Image == "" {
			return badField("image", "required")
		}
		return checkVQA(it)
	default:
		var it api.ScoreItem
		if err := json.Unmarshal(line, &it); err != nil {
			return fmt.Errorf("malformed JSON: %w", err)
		}
		if it.Image == "" {
			return badField("image", "required")
		}
		if err := checkQuestion("", it.Question, it.Options); err != nil {
			return err
		}
		_, err := letterIndex("answer", it.Answer, len(it.Options))
		return err
	}
}

// ownJob returns job id's status when the caller's key owns it. A job of
// another key is ErrNotFound, exactly as an id never issued, so a tenant
// learns nothing about another's jobs.
func (s *Server) ownJob(c *gin.Context, id string) (queue.Job, error) {
	st, err := s.cfg.Jobs.Status(c.Request.Context(), id)
	if err != nil {
		return st, err
	}
	if subtle.ConstantTimeCompare([]byte(st.Owner), []byte(c.GetString(ctxOwner))) != 1 {
		return queue.Job{}, fmt.Errorf("%w: %s", queue.ErrNotFound, id)
	}
	return st, nil
}

func (s *Server) handleJobStatus(c *gin.Context) {
	st, err := s.ownJob(c, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st.JobStatus)
}

func (s *Server) handleJobCancel(c *gin.Context) {
	if _, err := s.ownJob(c, c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.cfg.Jobs.Cancel(c.Request.Context(), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	s.handleJobStatus(c)
}

// handleJobResults streams finished items as JSONL in index order.
func (s *Server) handleJobResults(c *gin.Context) {
	id := c.Param("id")
	if _, err := s.ownJob(c, id); err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Type", "application/x-ndjson")
	c.Status(http.StatusOK)
	n := 0
	err := s.cfg.Jobs.Results(c.Request.Context(), id, func(line []byte) error {
		if _, err := c.Writer.Write(append(line, '\n')); err != nil {
			return err
		}
		if n++; n%256 == 0 {
			c.Writer.Flush()
		}
		return nil
	})
	if err != nil {
		s.log.Warn("job results stream ended early", "job", id, "err", err)
	}
}

// startWorker runs this replica's job worker until Close.
func (s *Server) startWorker() {
	if s.cfg.JobWorkers < 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.workerStop = cancel
	s.workerDone = make(chan struct{})
	w := &queue.Worker{Store: s.cfg.Jobs, Consumer: s.cfg.Consumer, Concurrency: s.cfg.JobWorkers,
		Process: s.processJobItem, Logger: s.log, Drain: 10 * time.Second,
		OnDone: func(_ queue.Task, o queue.Outcome) {
			outcome := "ok"
			if o.Err != "" {
				outcome = "error"
			}
			s.met.jobItems.WithLabelValues(outcome).Inc()
		}}
	go func() {
		defer close(s.workerDone)
		w.Run(ctx)
	}()
}

// processJobItem runs one job line through the same path as the live
// endpoints, so job items share batches with live traffic. Bad input is a
// permanent error; queue-full and model errors are retried.
func (s *Server) processJobItem(ctx context.Context, kind string, line []byte) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	var res any
	var err error
	switch kind {
	case api.JobKindVQA:
		res, err = s.jobVQA(ctx, line)
	case api.JobKindScore:
		res, err = s.jobScore(ctx, line)
	default:
		err = badField("kind", "unknown job kind %q", kind)
	}
	if err != nil {
		var re *RequestError
		var ie *ImageError
		if errors.As(err, &re) || errors.As(err, &ie) || errors.Is(err, ErrImageTooLarge) || errors.Is(err, ErrModelUnavailable) {
			return nil, queue.Permanent(err)
		}
		if errors.Is(err, batch.ErrQueueFull) {
			time.Sleep(50 * time.Millisecond) // back off before the retry
		}
		// The item's result is readable by the client: it names the log
		// entry, not the error (which may hold paths or node names).
		ref := newRequestID()
		s.log.Error("job item failed", "error_id", ref, "kind", kind, "err", err)
		return nil, &itemError{ref: ref, err: err}
	}
	b, err := json.Marshal(res)
	return b, err
}

func (s *Server) jobVQA(ctx context.Context, line []byte) (any, error) {
	var req api.VQARequest
	if err := json.Unmarshal(line, &req); err != nil {
		return nil, badField("", "malformed JSON: %v", err)
	}
	if err := checkVQA(req); err != nil {
		return nil, err
	}
	if s.vqa == nil {
		return nil, fmt.Errorf("vqa: %w", ErrModelUnavailable)
	}
	// Like /v1/vqa: hash the raw bytes for the cache key and decode only on
	// a cache miss.
	raw, err := s.parseImageField("image", req.Image)
	if err != nil {
		return nil, err
	}
	return s.rawVQA(ctx, req, raw, imageHash(raw), time.Now())
}

func (s *Server) jobScore(ctx context.Context, line []byte) (any, error) {
	var it api.ScoreItem
	if err := json.Unmarshal(line, &it); err != nil {
		return nil, badField("", "malformed JSON: %v", err)
	}
	if s.score == nil {
		return nil, fmt.Errorf("reward: %w", ErrModelUnavailable)
	}
	in, err := s.scoreInput("", it)
	if err != nil {
		return nil, err
	}
	sc, _, err := s.score.Submit(ctx, in, paddingKey(in.Question, in.Reasoning))
	if err != nil {
		return nil, err
	}
	return api.ScoreResult{Score: sc, Model: modelRef(s.models.Reward.Info())}, nil
}

// itemError is a job item's transient failure as its result shows it: a
// reference to the log entry that holds err.
type itemError struct {
	ref string // error id in the server log
	err error  // the cause, for errors.Is/As
}

func (e *itemError) Error() string {
	return "server: processing failed; the server log has the details under error_id " + e.ref
}

// Unwrap returns the cause.
func (e *itemError) Unwrap() error { return e.err }
