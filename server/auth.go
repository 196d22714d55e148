package server

import (
	"bufio"
	"crypto/hmac"
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

// Keys set in the gin context by the middleware and handlers.
const (
	ctxRequestID = "request_id"
	ctxKeyID     = "key_id"       // keyID of the caller's API key, or "anonymous"
	ctxOwner     = "owner"        // ownerID of the caller's API key; "" with auth off
	ctxImageHash = "image_sha256" // SHA-256 of the request's image; logged only as imageTag
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

// ownerID names the owner of the jobs a key submits: a SHA-256 of the
// key, so the stored owner does not reveal the key and stays the same
// across restarts and replicas.
func ownerID(k string) string {
	s := sha256.Sum256([]byte("medgr2 job owner\x00" + k))
	return hex.EncodeToString(s[:16])
}

// imageTag is what logs show for an image hash: an HMAC under
// Config.LogKey, so log lines cannot be joined to the image elsewhere.
func (s *Server) imageTag(hash string) string {
	if hash == "" {
		return ""
	}
	m := hmac.New(sha256.New, s.cfg.LogKey)
	m.Write([]byte(hash))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// callerKey returns the request's API key when it is one of the accepted
// keys.
func (s *Server) callerKey(c *gin.Context) (string, bool) {
	tok, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	match := 0
	for _, k := range s.keys {
		match |= subtle.ConstantTimeCompare([]byte(tok), []byte(k))
	}
	return tok, ok && match == 1
}

// newRequestID returns a random request id.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on supported platforms
	return hex.EncodeToString(b[:])
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
	id, owner := "anonymous", ""
	if len(s.keys) > 0 {
		tok, ok := s.callerKey(c)
		if !ok {
			s.fail(c, ErrUnauthorized)
			return
		}
		id, owner = keyID(tok), ownerID(tok)
	}
	c.Set(ctxKeyID, id)
	c.Set(ctxOwner, owner)
	if !s.limits.allow(id) {
		s.fail(c, ErrRateLimited)
		return
	}
	c.Next()
}

// observe assigns a request id, limits the body, times the request and
// logs it (never bodies, images, question text or raw image hashes).
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	rid := c.GetHeader("X-Request-Id")
	if rid == "" || len(rid) > 64 || strings.ContainsFunc(rid, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		rid = newRequestID()
	}
	c.Set(ctxRequestID, rid)
	c.Header("X-Request-Id", rid)
	if c.Request.ContentLength > s.cfg.MaxBody {
		s.fail(c, fmt.Errorf("%w: %d bytes, limit %d", ErrBodyTooLarge, c.Request.ContentLength, s.cfg.MaxBody))
	} else {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBody)
		c.Next()
	}
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
			"image_hmac", s.imageTag(c.GetString(ctxImageHash)))
	}
}
