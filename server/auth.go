package server

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// Keys set in the gin context by the middleware.
const (
	ctxRequestID = "request_id"
	ctxKeyID     = "key_id"
)

// LoadAPIKeys reads keys from path (one per line; blank lines and lines
// starting with # ignored) and from the comma-separated env variable
// MEDGR2_API_KEYS. Either source may be empty.
func LoadAPIKeys(path string) ([]string, error) {
	var keys []string
	for _, k := range strings.Split(os.Getenv("MEDGR2_API_KEYS"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	if path == "" {
		return keys, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("server: api keys: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" && !strings.HasPrefix(k, "#") {
			keys = append(keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("server: api keys %s: %w", path, err)
	}
	return keys, nil
}

// keyID is a short, non-secret name of a key for logs and rate limits.
func keyID(k string) string {
	s := sha256.Sum256([]byte(k))
	return hex.EncodeToString(s[:4])
}

// limiters holds one token bucket per API key.
type limiters struct {
	rps   rate.Limit               // sustained requests per second; 0 = unlimited
	burst int                      // bucket size
	mu    sync.Mutex               // guards byKey
	byKey map[string]*rate.Limiter // key id → limiter
}

func (l *limiters) allow(id string) bool {
	if l.rps <= 0 {
		return true
	}
	l.mu.Lock()
	lim, ok := l.byKey[id]
	if !ok {
		lim = rate.NewLimiter(l.rps, l.burst)
		l.byKey[id] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}

// authenticate checks the bearer key in constant time against every
// configured key and applies the per-key rate limit.
func (s *Server) authenticate(c *gin.Context) {
	id := "anonymous"
	if len(s.keys) > 0 {
		h := c.GetHeader("Authorization")
		tok, ok := strings.CutPrefix(h, "Bearer ")
		match := 0
		for _, k := range s.keys {
			match |= subtle.ConstantTimeCompare([]byte(tok), []byte(k))
		}
		if !ok || match != 1 {
			s.fail(c, ErrUnauthorized)
			return
		}
		id = keyID(tok)
	}
	c.Set(ctxKeyID, id)
	if !s.limits.allow(id) {
		s.fail(c, ErrRateLimited)
		return
	}
	c.Next()
}

// observe assigns a request id, limits the body, times the request and
// logs it (never bodies, images or question text).
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	rid := c.GetHeader("X-Request-Id")
	if rid == "" || len(rid) > 64 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		rid = hex.EncodeToString(b[:])
	}
	c.Set(ctxRequestID, rid)
	c.Header("X-Request-Id", rid)
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBody)
	c.Next()
	endpoint := c.FullPath()
	if endpoint == "" {
		endpoint = "unmatched"
	}
	code := c.Writer.Status()
	s.met.requests.WithLabelValues(endpoint, fmt.Sprint(code)).Inc()
	s.met.latency.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	if endpoint != "/metrics" && endpoint != "/healthz" && endpoint != "/readyz" {
		s.log.Info("request", "request_id", rid, "method", c.Request.Method, "endpoint", endpoint,
			"status", code, "ms", float64(time.Since(start).Microseconds())/1000, "key", c.GetString(ctxKeyID),
			"image_sha256", c.GetString("image_sha256"))
	}
}
