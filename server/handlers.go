package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	gojson "github.com/goccy/go-json"

	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/batch"
	"github.com/medgr2/medgr2/server/cache"
	"github.com/medgr2/medgr2/server/model"
	"github.com/medgr2/medgr2/tokenizer"
)

// Limits on request fields.
const (
	maxItems    = 256  // items per /v1/score request
	maxGenItems = 16   // items per /v1/generate request
	maxTextLen  = 8192 // bytes per question, option or reasoning
	maxMetaKeys = 16   // metadata entries per /v1/generate request
	maxMetaLen  = 256  // bytes per metadata key or value (they go into the prompt)
)

// decodeJSON reads the body into v, mapping size and syntax problems to
// typed errors. It decodes with goccy/go-json, which reads a request's
// base64 image several times faster than encoding/json (BenchmarkDecodeJSON:
// most of a request's bytes are that one string); a body it refuses, or
// one that is not valid UTF-8, is decoded by encoding/json, whose verdict,
// values and errors (naming the field of a wrong type) are the ones the
// client gets (TestUnmarshalBodyAgreesWithEncodingJSON).
func decodeJSON(c *gin.Context, v any) error {
	body, err := readBody(c.Request)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("%w: limit %d bytes", ErrBodyTooLarge, mbe.Limit)
		}
		return badField("", "reading body: %v", err)
	}
	if len(body) == 0 {
		return badField("", "empty body; expected a JSON object")
	}
	return unmarshalBody(body, v)
}

// unmarshalBody decodes a JSON body into v (a pointer), as decodeJSON
// says.
func unmarshalBody(body []byte, v any) error {
	// goccy/go-json keeps invalid UTF-8 where encoding/json writes U+FFFD:
	// such a body takes encoding/json's path.
	if utf8.Valid(body) && gojson.Unmarshal(body, v) == nil {
		return nil
	}
	reflect.ValueOf(v).Elem().SetZero() // drop what the first pass filled in
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return badField(te.Field, "wrong type: expected %s", te.Type)
		}
		return badField("", "malformed JSON: %v", err)
	}
	return nil
}

// maxBodyPrealloc bounds the buffer readBody allocates from a request's
// Content-Length before reading: 32 MiB (Config.MaxBody's default).
const maxBodyPrealloc = 32 << 20

// readBody reads r's body into one buffer sized from its Content-Length
// (at most maxBodyPrealloc), so a large JSON body (a base64 image) is not
// copied again each time io.ReadAll's buffer grows. A body longer than
// its header says still reads whole.
func readBody(r *http.Request) ([]byte, error) {
	n := r.ContentLength
	if n <= 0 {
		return io.ReadAll(r.Body)
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(n, maxBodyPrealloc)+bytes.MinRead))
	_, err := buf.ReadFrom(r.Body)
	return buf.Bytes(), err
}

// controlTokens are the chat-format tokens user text must not contain: a
// model would read them as turn or image boundaries.
var controlTokens = []string{tokenizer.ImStart, tokenizer.ImEnd, tokenizer.VisionStart, tokenizer.VisionEnd, tokenizer.ImagePad}

// checkControl rejects text holding a chat control token, before it can
// reach (and fail) a whole model batch.
func checkControl(field, text string) error {
	for _, ctl := range controlTokens {
		if strings.Contains(text, ctl) {
			return badField(field, "must not contain the chat control token %s", ctl)
		}
	}
	return nil
}

// checkQuestion validates a question and its options.
func checkQuestion(prefix, question string, options []string) error {
	if strings.TrimSpace(question) == "" {
		return badField(prefix+"question", "required")
	}
	if len(question) > maxTextLen {
		return badField(prefix+"question", "longer than %d bytes", maxTextLen)
	}
	if err := checkControl(prefix+"question", question); err != nil {
		return err
	}
	if len(options) < api.MinOptions || len(options) > api.MaxOptions {
		return badField(prefix+"options", "need %d to %d options, got %d", api.MinOptions, api.MaxOptions, len(options))
	}
	for i, o := range options {
		if strings.TrimSpace(o) == "" || len(o) > maxTextLen {
			return badField(fmt.Sprintf("%soptions[%d]", prefix, i), "must be non-empty and at most %d bytes", maxTextLen)
		}
		if err := checkControl(fmt.Sprintf("%soptions[%d]", prefix, i), o); err != nil {
			return err
		}
	}
	return nil
}

// checkMetadata bounds /v1/generate's metadata, which goes into the
// generator's prompt: at most maxMetaKeys entries of maxMetaLen bytes,
// without chat control tokens.
func checkMetadata(md map[string]string) error {
	if len(md) > maxMetaKeys {
		return badField("metadata", "at most %d entries, got %d", maxMetaKeys, len(md))
	}
	for k, v := range md {
		if len(k) > maxMetaLen || len(v) > maxMetaLen {
			return badField("metadata", "keys and values are at most %d bytes (%q is %d+%d)", maxMetaLen, trimKey(k), len(k), len(v))
		}
		if err := checkControl("metadata."+trimKey(k), k+v); err != nil {
			return err
		}
	}
	return nil
}

// trimKey shortens a metadata key for an error message.
func trimKey(k string) string {
	if len(k) > 32 {
		return k[:32] + "…"
	}
	return k
}

// letterIndex maps "A"… to an option index.
func letterIndex(field, letter string, n int) (int, error) {
	l := strings.ToUpper(strings.TrimSpace(letter))
	if len(l) != 1 || l[0] < 'A' || int(l[0]-'A') >= n {
		return 0, badField(field, "must be an option letter A-%c, got %q", 'A'+n-1, letter)
	}
	return int(l[0] - 'A'), nil
}

// vqaKey returns in's padding key: the bucket of its prompt length in
// tokens (batch.LengthKey) when the model is a model.PromptCounter, which
// also sets in.PromptIDs, else paddingKey of its text. Reasoning
// requests get keys of their own. A prompt the model cannot count (too
// many options, a control token) is the request's error, before it
// reaches a batch.
func (s *Server) vqaKey(in *model.VQAInput) (int, error) {
	var key int
	if pc, ok := s.models.VQA.(model.PromptCounter); ok {
		ids, err := pc.PromptIDs(*in)
		if err != nil {
			return 0, err
		}
		in.PromptIDs = ids
		key = batch.LengthKey(len(ids), 0)
	} else {
		key = 1<<10 + paddingKey(append([]string{in.Question}, in.Options...)...)
	}
	if in.Reason {
		key += 1 << 20 // reasoning decodes; never batch it with the fast path
	}
	return key, nil
}

// paddingKey buckets requests by the bytes of their text, a proxy for
// prompt length where the model cannot count tokens.
func paddingKey(texts ...string) int {
	n := 0
	for _, t := range texts {
		n += len(t)
	}
	return n / 256
}

// timing is a response's api.Timing: the batch's stats, the cost of
// making imgs (summed) and the time since start.
func timing(start time.Time, st batch.Stats, imgs ...model.Image) api.Timing {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var dec, proc time.Duration
	for _, im := range imgs {
		dec += im.DecodeTime
		proc += im.ProcessTime
	}
	return api.Timing{DecodeMS: ms(dec), PreprocessMS: ms(proc), QueueMS: ms(st.QueueWait), ModelMS: ms(st.Run),
		TotalMS: ms(time.Since(start)), BatchSize: st.BatchSize}
}

func modelRef(i model.Info) api.ModelRef { return api.ModelRef{Name: i.Name, Version: i.Version} }

// requestCtx bounds a model request by the configured timeout.
func (s *Server) requestCtx(c *gin.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request.Context(), s.cfg.RequestTimeout)
}

// readVQA decodes a JSON or multipart VQA request.
func (s *Server) readVQA(c *gin.Context) (api.VQARequest, []byte, error) {
	var req api.VQARequest
	if strings.HasPrefix(c.ContentType(), "multipart/") {
		return s.readVQAMultipart(c)
	}
	if err := decodeJSON(c, &req); err != nil {
		return req, nil, err
	}
	if err := checkVQA(req); err != nil {
		return req, nil, err
	}
	b, err := s.parseImageField("image", req.Image)
	return req, b, err
}

func checkVQA(req api.VQARequest) error {
	if req.Mode != "" && req.Mode != api.ModeFast && req.Mode != api.ModeReason {
		return badField("mode", "must be %q or %q", api.ModeFast, api.ModeReason)
	}
	return checkQuestion("", req.Question, req.Options)
}

// readVQAMultipart reads fields image (file), question, options (repeated
// or one JSON array) and mode.
func (s *Server) readVQAMultipart(c *gin.Context) (api.VQARequest, []byte, error) {
	var req api.VQARequest
	if err := c.Request.ParseMultipartForm(8 << 20); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, nil, fmt.Errorf("%w: limit %d bytes", ErrBodyTooLarge, mbe.Limit)
		}
		return req, nil, badField("", "malformed multipart form: %v", err)
	}
	f := c.Request.MultipartForm
	req.Question = first(f.Value["question"])
	req.Mode = first(f.Value["mode"])
	req.Options = f.Value["options"]
	if len(req.Options) == 1 && strings.HasPrefix(req.Options[0], "[") {
		if err := json.Unmarshal([]byte(req.Options[0]), &req.Options); err != nil {
			return req, nil, badField("options", "not a JSON array of strings: %v", err)
		}
	}
	if err := checkVQA(req); err != nil {
		return req, nil, err
	}
	files := f.File["image"]
	if len(files) != 1 {
		return req, nil, badField("image", "need exactly one image file part, got %d", len(files))
	}
	b, err := readPart(files[0], s.cfg.MaxImageBytes)
	return req, b, err
}

func readPart(h *multipart.FileHeader, limit int) ([]byte, error) {
	if h.Size > int64(limit) {
		return nil, fmt.Errorf("image: %w: %d bytes, limit %d", ErrImageTooLarge, h.Size, limit)
	}
	f, err := h.Open()
	if err != nil {
		return nil, badField("image", "unreadable upload: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, badField("image", "unreadable upload: %v", err)
	}
	return b, nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func (s *Server) handleVQA(c *gin.Context) {
	start := time.Now()
	req, raw, err := s.readVQA(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	resp, err := s.answer(c, req, raw, start)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, resp)
}

// answer runs one VQA request through the cache and the batcher. The
// cache key needs only the hash of the raw bytes, so a hit never decodes.
func (s *Server) answer(c *gin.Context, req api.VQARequest, raw []byte, start time.Time) (api.VQAResponse, error) {
	if s.vqa == nil {
		return api.VQAResponse{}, fmt.Errorf("vqa: %w", ErrModelUnavailable)
	}
	hash := imageHash(raw)
	c.Set(ctxImageHash, hash)
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	return s.rawVQA(ctx, req, raw, hash, start)
}

// rawVQA is the VQA path shared by /v1/vqa and jobs, for raw image bytes
// with hash imageHash(raw). The cache key needs only the hash, so a cache
// hit never decodes the image.
func (s *Server) rawVQA(ctx context.Context, req api.VQARequest, raw []byte, hash string, start time.Time) (api.VQAResponse, error) {
	if len(raw) > s.cfg.MaxImageBytes {
		return api.VQAResponse{}, fmt.Errorf("image: %w: %d bytes, limit %d", ErrImageTooLarge, len(raw), s.cfg.MaxImageBytes)
	}
	return s.cachedVQA(ctx, req, hash, func() (decodedImage, error) { return s.decodeImage("image", raw, hash) }, start)
}

// cachedVQA answers from the cache when it can; on a miss it calls decode
// and runs the model.
func (s *Server) cachedVQA(ctx context.Context, req api.VQARequest, hash string, decode func() (decodedImage, error), start time.Time) (api.VQAResponse, error) {
	info := s.models.VQA.Info()
	key := cache.Key(info.Name+"@"+info.Version, hash, "vqa", req.Question, req.Options, req.Mode)
	var resp api.VQAResponse
	if b, ok, err := s.cfg.Cache.Get(ctx, key); err == nil && ok && json.Unmarshal(b, &resp) == nil {
		s.met.cacheHits.WithLabelValues("hit").Inc()
		resp.Cached = true
		resp.Timing = timing(start, batch.Stats{})
		return resp, nil
	} else if err != nil {
		s.log.Warn("cache get failed", "err", err)
	}
	img, err := decode()
	if err != nil {
		return resp, err
	}
	s.met.cacheHits.WithLabelValues("miss").Inc()
	in := model.VQAInput{Image: img.img, ImageHash: img.hash, Question: req.Question, Options: req.Options, Reason: req.Mode == api.ModeReason}
	key2, err := s.vqaKey(&in)
	if err != nil {
		return resp, err
	}
	out, st, err := s.vqa.Submit(ctx, in, key2)
	if err != nil {
		return resp, err
	}
	if out.Answer < 0 || out.Answer >= len(req.Options) || len(out.Probs) != len(req.Options) {
		return resp, fmt.Errorf("vqa: model answered option %d with %d probabilities for %d options", out.Answer, len(out.Probs), len(req.Options))
	}
	resp = api.VQAResponse{Answer: string(rune('A' + out.Answer)), AnswerText: req.Options[out.Answer],
		Probabilities: map[string]float64{}, Reasoning: out.Reasoning, Model: modelRef(info), ImageSHA256: img.hash}
	for i, p := range out.Probs {
		resp.Probabilities[string(rune('A'+i))] = p
	}
	if b, err := json.Marshal(resp); err == nil {
		if err := s.cfg.Cache.Set(ctx, key, b, s.cfg.CacheTTL); err != nil {
			s.log.Warn("cache set failed", "err", err)
		}
	}
	resp.Timing = timing(start, st, img.img)
	resp.Timing.VisionMS = float64(out.VisionTime.Microseconds()) / 1000
	return resp, nil
}

func (s *Server) handleGenerate(c *gin.Context) {
	start := time.Now()
	var req api.GenerateRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	resp, err := s.generate(c, req, start)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, resp)
}

func (s *Server) generate(c *gin.Context, req api.GenerateRequest, start time.Time) (api.GenerateResponse, error) {
	if req.NumItems == 0 {
		req.NumItems = 1
	}
	if req.NumItems < 1 || req.NumItems > maxGenItems {
		return api.GenerateResponse{}, badField("num_items", "must be 1 to %d, got %d", maxGenItems, req.NumItems)
	}
	if err := checkMetadata(req.Metadata); err != nil {
		return api.GenerateResponse{}, err
	}
	if s.gen == nil {
		return api.GenerateResponse{}, fmt.Errorf("generator: %w", ErrModelUnavailable)
	}
	img, err := s.imageFromField("image", req.Image)
	if err != nil {
		return api.GenerateResponse{}, err
	}
	c.Set(ctxImageHash, img.hash)
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	in := model.GenerateInput{Image: img.img, ImageHash: img.hash, Metadata: req.Metadata, NumItems: req.NumItems}
	items, st, err := s.gen.Submit(ctx, in, req.NumItems)
	if err != nil {
		return api.GenerateResponse{}, err
	}
	resp := api.GenerateResponse{Model: modelRef(s.models.Generator.Info()), ImageSHA256: img.hash, Items: make([]api.GeneratedItem, 0, len(items))}
	for _, it := range items {
		if it.Answer < 0 || it.Answer >= len(it.Options) {
			return resp, fmt.Errorf("generator: item answer %d out of %d options", it.Answer, len(it.Options))
		}
		resp.Items = append(resp.Items, api.GeneratedItem{Question: it.Question, Options: it.Options,
			Answer: string(rune('A' + it.Answer)), Reasoning: it.Reasoning})
	}
	resp.Timing = timing(start, st, img.img)
	return resp, nil
}

func (s *Server) handleScore(c *gin.Context) {
	start := time.Now()
	var req api.ScoreRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	resp, err := s.scoreAll(c, req, start)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, resp)
}

// scoreInput validates and decodes one ScoreItem.
func (s *Server) scoreInput(prefix string, it api.ScoreItem) (model.ScoreInput, error) {
	if err := checkQuestion(prefix, it.Question, it.Options); err != nil {
		return model.ScoreInput{}, err
	}
	ans, err := letterIndex(prefix+"answer", it.Answer, len(it.Options))
	if err != nil {
		return model.ScoreInput{}, err
	}
	if len(it.Reasoning) > 4*maxTextLen {
		return model.ScoreInput{}, badField(prefix+"reasoning", "longer than %d bytes", 4*maxTextLen)
	}
	if err := checkControl(prefix+"reasoning", it.Reasoning); err != nil {
		return model.ScoreInput{}, err
	}
	img, err := s.imageFromField(prefix+"image", it.Image)
	if err != nil {
		return model.ScoreInput{}, err
	}
	return model.ScoreInput{Image: img.img, ImageHash: img.hash, Question: it.Question, Options: it.Options,
		Answer: ans, Reasoning: it.Reasoning}, nil
}

// scoreAll validates every item, then submits them all to the batcher
// concurrently so they share batches.
func (s *Server) scoreAll(c *gin.Context, req api.ScoreRequest, start time.Time) (api.ScoreResponse, error) {
	if len(req.Items) == 0 || len(req.Items) > maxItems {
		return api.ScoreResponse{}, badField("items", "need 1 to %d items, got %d", maxItems, len(req.Items))
	}
	if s.score == nil {
		return api.ScoreResponse{}, fmt.Errorf("reward: %w", ErrModelUnavailable)
	}
	images := 0
	for _, it := range req.Items {
		if it.Image != "" {
			images++
		}
	}
	if images > s.cfg.MaxRequestImages {
		return api.ScoreResponse{}, badField("items", "%d images, over the limit of %d per request", images, s.cfg.MaxRequestImages)
	}
	ins := make([]model.ScoreInput, len(req.Items))
	for i, it := range req.Items {
		in, err := s.scoreInput(fmt.Sprintf("items[%d].", i), it)
		if err != nil {
			return api.ScoreResponse{}, err
		}
		ins[i] = in
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	scores := make([]float64, len(ins))
	stats := make([]batch.Stats, len(ins))
	errs := make([]error, len(ins))
	done := make(chan int, len(ins))
	for i, in := range ins {
		go func() {
			scores[i], stats[i], errs[i] = s.score.Submit(ctx, in, paddingKey(in.Question, in.Reasoning))
			done <- i
		}()
	}
	for range ins {
		<-done
	}
	if err := errors.Join(errs...); err != nil {
		return api.ScoreResponse{}, err
	}
	imgs := make([]model.Image, len(ins))
	for i, in := range ins {
		imgs[i] = in.Image
	}
	return api.ScoreResponse{Scores: scores, Model: modelRef(s.models.Reward.Info()), Timing: timing(start, stats[0], imgs...)}, nil
}
