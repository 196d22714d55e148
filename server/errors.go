package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/batch"
	"github.com/medgr2/medgr2/server/queue"
)

// Sentinel errors of the server.
var (
	// ErrUnauthorized reports a missing or unknown API key.
	ErrUnauthorized = errors.New("server: missing or invalid API key")
	// ErrRateLimited reports a key over its request rate.
	ErrRateLimited = errors.New("server: rate limit exceeded")
	// ErrModelUnavailable reports a request for a model role not loaded.
	ErrModelUnavailable = errors.New("server: model not loaded")
	// ErrImageTooLarge reports an image over the byte or pixel limit.
	ErrImageTooLarge = errors.New("server: image too large")
	// ErrBodyTooLarge reports a request body over the limit.
	ErrBodyTooLarge = errors.New("server: request body too large")
	// ErrShuttingDown reports a request refused during shutdown.
	ErrShuttingDown = errors.New("server: shutting down")
	// ErrNoRoute reports a method and path the server has no endpoint for.
	ErrNoRoute = errors.New("server: no such endpoint")
)

// RequestError is a client mistake in a request field (400).
type RequestError struct {
	Field string // JSON field at fault, e.g. "options"
	Msg   string // what is wrong
}

func (e *RequestError) Error() string {
	if e.Field == "" {
		return "server: " + e.Msg
	}
	return fmt.Sprintf("server: %s: %s", e.Field, e.Msg)
}

// ImageError reports bytes that are not a decodable image (400).
type ImageError struct {
	Field string // which field held the image
	Err   error  // the decoder's complaint
}

func (e *ImageError) Error() string {
	return fmt.Sprintf("server: %s: not a decodable image: %v", e.Field, e.Err)
}

// Unwrap returns the decoder's error.
func (e *ImageError) Unwrap() error { return e.Err }

func badField(field, format string, args ...any) error {
	return &RequestError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// statusClientClosed is nginx's 499: the client went away.
const statusClientClosed = 499

// mapError turns any error into an HTTP status and a JSON error body. It is
// the only place where errors become statuses. A 5xx body never carries
// err's text (it may hold internal addresses, file paths or model node
// names): it gets a fixed message for its code, and fail logs err under
// the request id that the body carries.
func mapError(err error) (int, api.ErrorBody) {
	status, body := classify(err)
	if status >= 500 {
		body.Message = publicMessage(err, body.Code)
	}
	return status, body
}

// publicMessage is the body message of a 5xx answer with code.
func publicMessage(err error, code string) string {
	switch {
	case errors.Is(err, queue.ErrUnavailable):
		return "server: the job store cannot be reached; retry after the time in Retry-After"
	case errors.Is(err, ErrShuttingDown), errors.Is(err, batch.ErrClosed):
		return "server: shutting down; retry after the time in Retry-After"
	case code == api.CodeTimeout:
		return "server: the model did not answer within the request timeout"
	}
	return "server: internal error; the server log has the details under this request id"
}

// classify maps err to a status and a body holding err's text.
func classify(err error) (int, api.ErrorBody) {
	var re *RequestError
	var ie *ImageError
	body := api.ErrorBody{Message: err.Error()}
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &re):
		status, body.Code, body.Field = http.StatusBadRequest, api.CodeInvalidRequest, re.Field
	case errors.Is(err, ErrImageTooLarge):
		status, body.Code = http.StatusRequestEntityTooLarge, api.CodeImageTooLarge
	case errors.As(err, &ie):
		status, body.Code, body.Field = http.StatusBadRequest, api.CodeInvalidImage, ie.Field
	case errors.Is(err, ErrBodyTooLarge):
		status, body.Code = http.StatusRequestEntityTooLarge, api.CodeBodyTooLarge
	case errors.Is(err, ErrUnauthorized):
		status, body.Code = http.StatusUnauthorized, api.CodeUnauthorized
	case errors.Is(err, ErrRateLimited):
		status, body.Code = http.StatusTooManyRequests, api.CodeRateLimited
	case errors.Is(err, batch.ErrQueueFull):
		status, body.Code = http.StatusTooManyRequests, api.CodeQueueFull
	case errors.Is(err, ErrModelUnavailable):
		status, body.Code = http.StatusNotFound, api.CodeModelUnavailable
	case errors.Is(err, queue.ErrNotFound), errors.Is(err, ErrNoRoute):
		status, body.Code = http.StatusNotFound, api.CodeNotFound
	case errors.Is(err, queue.ErrLost):
		status, body.Code = http.StatusGone, api.CodeJobLost
	case errors.Is(err, queue.ErrEmptyJob):
		status, body.Code = http.StatusBadRequest, api.CodeInvalidRequest
	case errors.Is(err, batch.ErrClosed), errors.Is(err, ErrShuttingDown), errors.Is(err, queue.ErrUnavailable):
		status, body.Code = http.StatusServiceUnavailable, api.CodeUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		status, body.Code = http.StatusGatewayTimeout, api.CodeTimeout
	case errors.Is(err, context.Canceled):
		status, body.Code = statusClientClosed, api.CodeCanceled
	default:
		body.Code = api.CodeInternal
	}
	body.Type = body.Code
	return status, body
}

// fail writes err through mapError and aborts the gin chain. 429 and 503
// answers carry a Retry-After estimate; 5xx errors are logged with the
// request id, which every error body carries.
func (s *Server) fail(c *gin.Context, err error) {
	status, body := mapError(err)
	body.RequestID = c.GetString(ctxRequestID)
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		c.Header("Retry-After", strconv.Itoa(s.retryAfter(c.Request.Context(), err)))
	}
	if status >= 500 {
		s.log.Error("request failed", "request_id", body.RequestID, "status", status, "err", err)
	}
	c.AbortWithStatusJSON(status, api.ErrorResponse{Error: body})
}
